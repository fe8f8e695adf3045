"""``research_run``: the main job end to end on the embedded store (what ``make run`` does).

Train the sentiment head on Financial PhraseBank's train split once (when it is there) ->
simulate (or take the real crypto files) -> ingest bars, then news / Fear & Greed / flow
with the headlines scored, into a fresh DuckDB file -> features from the store -> a
walk-forward trained from the store (with the simulator's oracle from its folder, which the
store does not hold: model vs baselines vs oracle, out-of-sample signals) -> a risk-checked
backtest of those signals on the stored bars. Each step is the typed call its command
makes; the result carries every step's result and a summary a person can read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from app.backtest.signals_io import check_signals
from app.config import Settings
from app.errors import InputError
from app.pipeline.backtest import BacktestJobResult, run_backtest_job, store_bars, store_classes
from app.pipeline.bar_sources import BarRequest, read_offline
from app.pipeline.features import FeatureTableResult, build_feature_table
from app.pipeline.ingest import IngestResult, ingest_bars
from app.pipeline.side import SideResult, ingest_side
from app.pipeline.side_sources import SideRequest, collect
from app.pipeline.walkforward import (
    WalkForwardJobResult,
    WalkForwardOptions,
    load_walkforward_data,
    sim_oracle,
    walk_forward,
)
from app.sources.backtest_files import read_signals_csv
from app.store import open_store
from app.types import AssetClass

CRYPTO_REAL = "crypto_binance_spot_5m"
FPB = "sentiment_financial_phrasebank/fpb_sentences.csv"
BACKTEST_KEYS = ("total_return", "sharpe", "max_drawdown", "n_trades", "final_equity")


@dataclass(frozen=True, slots=True)
class ResearchOptions:
    """The ``run`` flags."""

    workdir: Path = Path("runs/latest")
    data: str = "sim"  # sim: the seeded simulator; shared: the real files in shared_dir
    shared_dir: Path = Path("../shared/data")
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    days: int = 45
    seed: int = 7
    model: str = "transformer"
    folds: int = 3
    train_sentiment: bool = True

    def __post_init__(self) -> None:
        if self.data not in ("sim", "shared"):
            raise InputError(f"--data={self.data!r}: expected sim or shared")
        if not self.symbols:
            raise InputError("--symbols: give at least one symbol")


@dataclass(frozen=True, slots=True)
class ResearchResult:
    """Every step's result; ``to_dict()`` is the final JSON line, ``readable()`` the summary."""

    options: ResearchOptions
    sentiment_head: str
    ingest: IngestResult
    side: SideResult | None
    features: FeatureTableResult
    walkforward: WalkForwardJobResult
    backtest: BacktestJobResult
    signals: int
    max_confidence: float | None
    seconds: float
    backtest_dir: Path

    def to_dict(self) -> dict[str, Any]:
        report = self.walkforward.report
        return {
            "workdir": str(self.options.workdir),
            "data": self.options.data,
            "symbols": list(self.options.symbols),
            "bars_written": self.ingest.rows_written,
            "feature_columns": self.features.columns,
            "dacc": report.get("dacc"),
            "baselines": report.get("baselines"),
            "oracle_dacc": report.get("oracle_dacc"),
            "model_version": self.walkforward.version,
            "sentiment_head": self.sentiment_head,
            "backtest": {k: self.backtest.get(k) for k in BACKTEST_KEYS},
            "signals": self.signals,
            "max_confidence": self.max_confidence,
            "hold_reasons": self.backtest.get("hold_reasons"),
            "seconds": self.seconds,
        }

    def readable(self) -> str:
        """A short human summary, printed before the JSON line."""
        s = self.to_dict()
        baselines = s["baselines"] or {}
        wf_dir = self.walkforward.signals.parent
        lines = [
            "",
            f"Main job finished in {s['seconds']} s ({s['data']} data, {', '.join(s['symbols'])}).",
            f"  bars in the store:      {s['bars_written']}",
            f"  side inputs ingested:   {'n/a' if self.side is None else self.side.rows_written}",
            f"  feature columns:        {s['feature_columns']}",
            f"  walk-forward DACC:      model {_fmt(s['dacc'])}  |  oracle "
            f"{_fmt(s['oracle_dacc'])}  |  "
            + "  ".join(f"{k} {_fmt(v)}" for k, v in baselines.items()),
            f"  sentiment head:         {s['sentiment_head']}",
            f"  registered model:       {s['model_version']}",
            "  risk-checked backtest:  "
            + "  ".join(f"{k} {_fmt(v)}" for k, v in s["backtest"].items()),
            f"  out-of-sample signals:  {s['signals']} (max confidence "
            f"{_fmt(s['max_confidence'])}; risk holds: {s['hold_reasons']})",
            f"  reports: {wf_dir / 'report.md'}  {self.backtest_dir / 'metrics.json'}",
            "",
        ]
        return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def research_run(
    settings: Settings, options: ResearchOptions, log: Callable[[str], None] = lambda _: None
) -> ResearchResult:
    """Run every step in order on a fresh store in ``options.workdir``."""

    @contextmanager
    def step(name: str) -> Iterator[None]:
        log(f"[run] {name}")
        started = time.perf_counter()
        yield
        log(f"[run] {name}: done in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    work = options.workdir
    work.mkdir(parents=True, exist_ok=True)
    head = _sentiment_head(settings, options, step, log)
    with step("data"):
        folder = _data_folder(settings, options)
    db = (work / "store.db").resolve()
    if db.exists():
        db.unlink()  # each run starts from an empty store, so its figures are its own
    symbols = options.symbols
    store = open_store(f"duckdb:///{db}")
    try:
        with step("ingest"):
            request = BarRequest(
                source="sim" if options.data == "sim" else "csv",
                path=folder,
                symbols=symbols,
                asset_class=AssetClass.CRYPTO,
            )
            ingest = ingest_bars(settings, store, request, read_offline(request, settings))
        side = None
        if options.data == "sim":
            with step("ingest-side"):
                got = collect(SideRequest(source="sim", kind="all", path=folder), settings)
                side = ingest_side(settings, store, got, kind="all", source="sim")
        with step("features"):
            out = work / f"features_{symbols[0]}.parquet"
            features = build_feature_table(settings, store, symbols[0], out)
        with step("walkforward (trained from the store)"):
            data = load_walkforward_data(settings, store=store, symbols=symbols)
            if options.data == "sim":
                data = replace(data, oracle=sim_oracle(folder, symbols))
            wf = walk_forward(
                settings,
                data,
                WalkForwardOptions(model=options.model, folds=options.folds, quick=True),
                work / "walkforward",
                register=True,
                progress=log,
            )
        with step("backtest"):
            bars = store_bars(store, symbols)
            classes = store_classes(store, list(bars), [], settings)
            signals = check_signals(
                read_signals_csv(wf.signals), bars, origin=f"signals file {wf.signals}"
            )
            bt_dir = work / "backtest"
            backtest = run_backtest_job(settings, bars, signals, classes, bt_dir)
    finally:
        store.close()
    confidence = pd.read_csv(wf.signals, usecols=["confidence"])["confidence"]
    return ResearchResult(
        options=options,
        sentiment_head=head,
        ingest=ingest,
        side=side,
        features=features,
        walkforward=wf,
        backtest=backtest,
        signals=int(confidence.size),
        max_confidence=float(confidence.max()) if confidence.size else None,
        seconds=round(time.perf_counter() - started, 1),
        backtest_dir=bt_dir,
    )


def _sentiment_head(settings: Settings, options: ResearchOptions, step: Any, log: Any) -> str:
    """Train the sentiment head on Financial PhraseBank's train split once, when it is there.

    The head is fitted on real labelled sentences (never on the simulator's headlines or their
    true sentiment) and registered in settings.registry_dir, where ingest_side and the
    walk-forward pick it up. Without the data the zero-shot head is used.
    """
    from app.models.registry import promoted_version
    from app.pipeline.sentiment import train_sentiment

    current = promoted_version(settings.registry_dir, "sentiment")
    if current:
        return current
    fpb = options.shared_dir / FPB
    if not options.train_sentiment or not fpb.is_file():
        log(f"[run] sentiment head: zero-shot ({fpb} not used)")
        return "zero-shot"
    with step("sentiment-train"):
        return train_sentiment(settings, fpb, split="train").version


def _data_folder(settings: Settings, options: ResearchOptions) -> Path:
    """The real crypto files, or a fresh simulation written into the workdir."""
    if options.data == "shared":
        folder = options.shared_dir / CRYPTO_REAL
        if not folder.is_dir():
            raise InputError(f"--shared-dir: {folder} does not exist")
        return folder
    from app.sim.catalog import catalog_assets
    from app.sim.config import SimConfig
    from app.sim.files import write_simulation
    from app.sim.market import SimulatedMarket

    if options.days < 1:
        raise InputError(f"--days={options.days}: must be >= 1")
    try:
        assets = catalog_assets(options.symbols)
    except ValueError as exc:
        raise InputError(f"--symbols: {exc}") from exc
    config = SimConfig(seed=options.seed, days=options.days, assets=assets, labels=settings.labels)
    return write_simulation(SimulatedMarket(config).run(), options.workdir / "sim")
