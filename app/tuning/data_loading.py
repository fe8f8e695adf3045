"""Bars and side inputs for training, from files or the store, turned into a WindowSet.

``--data`` accepts: OHLCV CSV files (``<SYMBOL>_5m.csv``), folders of them, or a simulator
output folder (``manifest.json`` beside the CSVs), which also brings its news, macro, flow and
oracle files. Features come from app.features.build_features with the asset class's spec, so
training sees exactly what the live incremental engine computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.errors import InputError
from app.models.dataset import LabeledSeries, WindowSet, label_series
from app.schema.bar_files import CsvSource, symbol_from_filename
from app.sim.files import load_simulation
from app.sim.manifest import MANIFEST_FILE
from app.sim.result import SimulationResult
from app.text.impact import IMPACT_COLUMNS, HeadlineEvents, headline_events
from app.tuning.stored_news import news_texts, scored_news
from app.tuning.walkforward import Oracle
from app.types import AssetClass

if TYPE_CHECKING:
    from app.config import Settings
    from app.store import TimeSeriesStore
    from app.text.sentiment import SentimentModel


@dataclass
class LoadedData:
    asset_class: AssetClass
    bars: dict[str, pd.DataFrame]  # symbol -> store bar columns, sorted by ts
    news: pd.DataFrame | None = None  # scored: published_at, symbol, score, topic_*
    macro: pd.DataFrame | None = None  # symbol(=series name), ts, published_at, value
    flow: pd.DataFrame | None = None  # symbol, ts, kind, published_at, value
    oracle: Oracle | None = None
    source: str = ""
    rejected: dict[str, int] = field(default_factory=dict)
    # (len(news), d) text embeddings row-aligned with ``news``: enables the fold-fitted
    # news-impact columns (app/text/impact.py); None when the text is not at hand
    news_embeddings: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "bars": {s: len(f) for s, f in self.bars.items()},
            "news_rows": 0 if self.news is None else len(self.news),
            "sentiment_head": "" if self.news is None else self.news.attrs.get("sentiment_head"),
            "macro_rows": 0 if self.macro is None else len(self.macro),
            "flow_rows": 0 if self.flow is None else len(self.flow),
            "oracle": bool(self.oracle),
            "rejected_rows": self.rejected,
        }


def _utc(frame: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for c in cols:
        if c in frame.columns:
            frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[ns, UTC]")
    return frame


def _pick_symbols(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    if not wanted:
        return list(available)
    missing = [s for s in wanted if s not in available]
    if missing:
        raise InputError(f"symbols {missing}: not found in {where} (have {sorted(available)})")
    return list(wanted)


def _csv_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*_5m.csv"))
            if not found:
                raise InputError(f"--data {p}: folder holds no <SYMBOL>_5m.csv files")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"--data {p}: no such file or folder")
    return files


def load_csv_files(
    paths: Sequence[Path], symbols: Sequence[str] | None, asset_class: AssetClass
) -> LoadedData:
    """Validated bars from OHLCV files; bad rows are rejected and counted, good rows kept."""
    by_symbol = {symbol_from_filename(f): f for f in _csv_files(paths)}
    chosen = _pick_symbols(list(by_symbol), symbols, "the --data files")
    bars, rejected = {}, {}
    for sym in chosen:
        result = CsvSource(by_symbol[sym]).load(sym)
        bars[sym] = result.good.reset_index(drop=True)
        if result.rows_rejected:
            rejected[sym] = int(result.rows_rejected)
    return LoadedData(asset_class, bars, source="csv", rejected=rejected)


def _scored_news(
    result: SimulationResult, symbols: list[str], settings: Settings
) -> pd.DataFrame | None:
    """Score the simulator's headlines with the project's sentiment model (never the
    generator's own sentiment labels, which a real feed would not have)."""
    items = [n for n in result.news if set(n.symbols) & set(symbols)]
    if not items:
        return None
    from app.text.tagging import score_news

    assets = [result.manifest.assets[s] for s in symbols]  # names and aliases for the tagger
    # the registry's trained head (FPB, docs/SENTIMENT.md) when there is one, else zero-shot
    model = _configured_model(settings)
    scored = score_news(items, assets, model)
    scored.attrs["sentiment_head"] = model.head_name
    return scored


def _configured_model(settings: Settings) -> SentimentModel:
    """The configured sentiment model with the registry's current head, loaded once."""
    from app.models.text_loader import cached_sentiment_model

    return cached_sentiment_model(settings.sentiment, Path(settings.registry_dir))


def _news_embeddings(
    result: SimulationResult, news: pd.DataFrame | None, settings: Settings
) -> np.ndarray | None:
    """Embeddings of the scored rows' text (cached encodings: the scoring already ran them)."""
    if news is None or not len(news):
        return None
    text_by_id = {n.id: n.text for n in result.news}
    return _configured_model(settings).embed([text_by_id[i] for i in news["news_id"]])


def load_simulation_folder(
    path: Path,
    symbols: Sequence[str] | None,
    asset_class: AssetClass | None,
    news: bool = True,
    news_impact: bool = True,
    *,
    settings: Settings,
) -> LoadedData:
    result = load_simulation(path)
    classes = {s: AssetClass(c) for s, c in result.asset_classes.items()}
    if asset_class is None:
        first = symbols[0] if symbols else next(iter(classes))
        if first not in classes:
            raise InputError(f"symbol={first!r}: not in the simulation at {path}")
        asset_class = classes[first]
    available = [s for s, c in classes.items() if c is asset_class]
    chosen = _pick_symbols(available, symbols, f"the {asset_class.value} symbols of {path}")
    macro = pd.DataFrame(
        [
            {"symbol": m.name, "ts": m.ts, "published_at": m.published_at, "value": m.value}
            for m in result.macro
        ],
        columns=["symbol", "ts", "published_at", "value"],
    )
    flow = pd.DataFrame(
        [
            {
                "symbol": f.symbol,
                "ts": f.ts,
                "kind": f.kind,
                "published_at": f.published_at,
                "value": f.value,
            }
            for f in result.flow
            if f.symbol in chosen
        ],
        columns=["symbol", "ts", "kind", "published_at", "value"],
    )
    scored = _scored_news(result, chosen, settings) if news else None
    return LoadedData(
        asset_class=asset_class,
        bars={s: result.bars[s].reset_index(drop=True) for s in chosen},
        news=scored,
        news_embeddings=_news_embeddings(result, scored, settings) if news_impact else None,
        macro=_utc(macro, "ts", "published_at") if len(macro) else None,
        flow=_utc(flow, "ts", "published_at") if len(flow) else None,
        oracle=Oracle(
            frames={s: result.oracle[s] for s in chosen if s in result.oracle},
            df=result.manifest.oracle.df,
        ),
        source=f"simulation:{path}",
    )


def load_data(
    paths: Sequence[str | Path],
    symbols: Sequence[str] | None,
    asset_class: AssetClass | None,
    news: bool = True,
    news_impact: bool = True,
    *,
    settings: Settings,
) -> LoadedData:
    """Dispatch ``--data``: a simulator folder, or OHLCV files/folders. ``settings`` name the
    sentiment model that scores a simulation's headlines."""
    ps = [Path(p) for p in paths]
    if len(ps) == 1 and ps[0].is_dir() and (ps[0] / MANIFEST_FILE).is_file():
        return load_simulation_folder(
            ps[0], symbols, asset_class, news, news_impact, settings=settings
        )
    if asset_class is None:
        raise InputError("--asset-class is required for OHLCV files (crypto|stocks|forex)")
    return load_csv_files(ps, symbols, asset_class)


def load_store(
    url: str | TimeSeriesStore,
    symbols: Sequence[str],
    asset_class: AssetClass,
    topic_model: SentimentModel | None = None,
    news_impact: bool = True,
    *,
    settings: Settings,
) -> LoadedData:
    """Bars, scored news (with text embeddings for the news-impact columns unless
    ``news_impact=False``), macro and flow from the store.

    The scored news is the frame ``score_news`` gives on the ``--data`` path: stored scores,
    topic intensities from the stored headline text with the sentiment model (``topic_model``,
    default the configured one, loaded only when there are sentiment rows); see
    app.tuning.stored_news.scored_news.
    """
    from app.features.spec import default_spec
    from app.store import open_store

    if not symbols:
        raise InputError("--symbols is required with --store")
    owned = isinstance(url, str)  # a URL is opened and closed here; a store is the caller's
    store = open_store(url) if owned else url
    url = store.url
    try:
        bars = {}
        for s in symbols:
            frame = store.read_bars(s)
            if frame.empty:
                raise InputError(f"symbol={s!r}: no bars in store {url}")
            bars[s] = frame.reset_index(drop=True)
        spec = default_spec(asset_class)
        per_symbol = [
            scored_news(
                store, s, spec, None, None, None, topic_model=topic_model, settings=settings
            )
            for s in symbols
        ]
        found = [f for f in per_symbol if f is not None and len(f)]
        news = None
        if found:
            news = pd.concat(found, ignore_index=True)
            news = news.sort_values(["published_at", "news_id", "symbol"], kind="stable")
            news = news.reset_index(drop=True)
        embeddings = None
        if news_impact and news is not None and len(news):
            text_of = news_texts(store, None, None, None)  # scored_news kept only rows with text
            model = topic_model or _configured_model(settings)
            embeddings = model.embed([text_of[i] for i in news["news_id"]])
        macro = store.read("macro")
        flow = store.read("flow")
        flow = flow[flow["symbol"].isin(symbols)] if len(flow) else flow
    finally:
        if owned:
            store.close()
    return LoadedData(
        asset_class,
        bars,
        news_embeddings=embeddings,
        news=news if news is not None and len(news) else None,
        macro=macro if len(macro) else None,
        flow=flow if len(flow) else None,
        source=f"store:{url}",
    )


def feature_series(data: LoadedData, spec: Any, label_settings: Any) -> list[LabeledSeries]:
    """Build features per symbol and attach labels; non-finite values after warm-up are an
    error naming the column and the count."""
    from app.features.batch import build_features

    series = []
    for symbol, bars in data.bars.items():
        feats = build_features(
            bars,
            asset_class=data.asset_class,
            news=data.news,
            macro=data.macro,
            flow=data.flow,
            spec=spec,
        )
        names = list(spec.feature_names)
        x = feats[names].to_numpy(np.float64)
        after = x[spec.warmup_bars :]
        bad = ~np.isfinite(after)
        if bad.any():
            col = int(np.flatnonzero(bad.any(axis=0))[0])
            row = int(np.flatnonzero(bad[:, col])[0]) + spec.warmup_bars
            raise InputError(
                f"{symbol}: feature {names[col]!r} has {int(bad[:, col].sum())} non-finite "
                f"values after the warm-up of {spec.warmup_bars} bars (first at row {row}, "
                f"ts {bars['ts'].iloc[row]}); {int(bad.sum())} in all columns"
            )
        ts = bars["ts"].astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").astype(np.int64)
        headlines = _headlines(data, symbol, ts, bars["close"].to_numpy())
        if headlines is not None:
            # filled per fold by a model fitted on that fold's training window (run_fold)
            x = np.hstack([x, np.zeros((len(x), len(IMPACT_COLUMNS)))])
            names += list(IMPACT_COLUMNS)
        series.append(
            label_series(
                symbol,
                ts,
                bars["open"].to_numpy(),
                bars["close"].to_numpy(),
                x.astype(np.float32),
                label_settings,
                names,
                headlines=headlines,
            )
        )
    return series


def _headlines(
    data: LoadedData, symbol: str, ts: np.ndarray, close: np.ndarray
) -> HeadlineEvents | None:
    """The symbol's scored headlines with their embeddings and forward-return targets."""
    if data.news_embeddings is None or data.news is None:
        return None
    rows = (data.news["symbol"] == symbol).to_numpy()
    published = (
        data.news.loc[rows, "published_at"]
        .astype("datetime64[ns, UTC]")
        .to_numpy("datetime64[ns]")
        .astype(np.int64)
    )
    return headline_events(ts, close, published, data.news_embeddings[rows])


def build_windows(data: LoadedData, spec: Any, label_settings: Any, lookback: int) -> WindowSet:
    need = spec.warmup_bars + lookback + label_settings.horizon + 1
    short = {s: len(f) for s, f in data.bars.items() if len(f) < need}
    if short:
        raise InputError(
            f"too few bars: {short}; need > warm-up {spec.warmup_bars} + lookback {lookback} "
            f"+ horizon {label_settings.horizon} per symbol"
        )
    return WindowSet(feature_series(data, spec, label_settings), lookback)
