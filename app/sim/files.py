"""The simulation folder format: plain CSV + a JSON manifest, readable by any tool.

Layout (docs/SIMULATOR.md): ``manifest.json``, ``<SYMBOL>_5m.csv`` (same shape as
../shared/data), ``<SYMBOL>_oracle.csv``, ``news.csv``, ``macro.csv``, ``flow.csv``.
Timestamps are ISO-8601 UTC with a ``Z``; floats are written with full precision, so
``load_simulation(write_simulation(r))`` gives back exactly ``r``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.errors import InputError
from app.sim.manifest import TS_FORMAT, SimManifest
from app.sim.result import SimulationResult
from app.types import FlowPoint, MacroPoint, NewsItem

BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
ORACLE_COLUMNS = ("ts", "mu", "sigma", "theta", "p_up", "p_down", "p_flat")
NEWS_COLUMNS = (
    "id",
    "published_at",
    "source",
    "title",
    "body",
    "symbols",
    "topic",
    "true_sentiment",
)
MACRO_COLUMNS = ("name", "ts", "published_at", "value")
FLOW_COLUMNS = ("symbol", "kind", "ts", "published_at", "value")


def _iso(series: pd.Series) -> pd.Series:
    return series.dt.strftime(TS_FORMAT)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def write_simulation(result: SimulationResult, out: str | Path) -> Path:
    """Write every modality and the manifest into ``out`` (created if missing)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for symbol, bars in result.bars.items():
        frame = bars.loc[:, list(BAR_COLUMNS)].copy()
        frame["ts"] = _iso(frame["ts"])
        _write_csv(frame, folder / f"{symbol}_5m.csv")
        oracle = result.oracle[symbol].loc[:, list(ORACLE_COLUMNS)].copy()
        oracle["ts"] = _iso(oracle["ts"])
        _write_csv(oracle, folder / f"{symbol}_oracle.csv")
    news = pd.DataFrame(
        [
            {
                "id": n.id,
                "published_at": n.published_at.strftime(TS_FORMAT),
                "source": n.source,
                "title": n.title,
                "body": n.body,
                "symbols": "|".join(n.symbols),
                "topic": n.topic,
                "true_sentiment": n.true_sentiment,
            }
            for n in result.news
        ],
        columns=list(NEWS_COLUMNS),
    )
    _write_csv(news, folder / "news.csv")
    macro = pd.DataFrame(
        [
            (m.name, m.ts.strftime(TS_FORMAT), m.published_at.strftime(TS_FORMAT), m.value)
            for m in result.macro
        ],
        columns=list(MACRO_COLUMNS),
    )
    _write_csv(macro, folder / "macro.csv")
    flow = pd.DataFrame(
        [
            (
                f.symbol,
                f.kind,
                f.ts.strftime(TS_FORMAT),
                f.published_at.strftime(TS_FORMAT),
                f.value,
            )
            for f in result.flow
        ],
        columns=list(FLOW_COLUMNS),
    )
    _write_csv(flow, folder / "flow.csv")
    result.manifest.save(folder)
    return folder


def _read(path: Path, columns: tuple[str, ...], **kw: object) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the simulation folder")
    frame = pd.read_csv(path, **kw)  # type: ignore[call-overload]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    return frame


def _utc(series: pd.Series, path: Path, column: str) -> pd.Series:
    try:
        return pd.to_datetime(series, utc=True, format=TS_FORMAT).astype("datetime64[ns, UTC]")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: column {column!r} is not ISO UTC ({exc})") from exc


def load_simulation(path: str | Path) -> SimulationResult:
    """Read a folder written by :func:`write_simulation` back into a ``SimulationResult``: the
    manifest first (:meth:`SimManifest.load`), then the bar and oracle files of its symbols."""
    folder = Path(path)
    manifest = SimManifest.load(folder)
    classes = manifest.asset_classes
    bars: dict[str, pd.DataFrame] = {}
    oracle: dict[str, pd.DataFrame] = {}
    for symbol in classes:
        p = folder / f"{symbol}_5m.csv"
        frame = _read(p, BAR_COLUMNS)
        frame["ts"] = _utc(frame["ts"], p, "ts")
        frame.insert(0, "symbol", symbol)
        bars[symbol] = frame.loc[:, ["symbol", *BAR_COLUMNS]]
        p = folder / f"{symbol}_oracle.csv"
        frame = _read(p, ORACLE_COLUMNS)
        frame["ts"] = _utc(frame["ts"], p, "ts")
        oracle[symbol] = frame.loc[:, list(ORACLE_COLUMNS)]
    text_cols = {c: str for c in ("id", "source", "title", "body", "symbols", "topic")}
    p = folder / "news.csv"
    news_frame = _read(p, NEWS_COLUMNS, dtype=text_cols, keep_default_na=False)
    news = [
        NewsItem(
            id=row.id,
            published_at=ts.to_pydatetime(),
            source=row.source,
            title=row.title,
            body=row.body,
            symbols=tuple(s for s in row.symbols.split("|") if s),
            topic=row.topic,
            true_sentiment=float(row.true_sentiment) if row.true_sentiment != "" else None,
        )
        for row, ts in zip(
            news_frame.itertuples(index=False),
            _utc(news_frame["published_at"], p, "published_at"),
            strict=True,
        )
    ]
    p = folder / "macro.csv"
    macro_frame = _read(p, MACRO_COLUMNS, dtype={"name": str})
    macro = [
        MacroPoint(
            name=name, ts=t.to_pydatetime(), published_at=pub.to_pydatetime(), value=float(v)
        )
        for name, t, pub, v in zip(
            macro_frame["name"],
            _utc(macro_frame["ts"], p, "ts"),
            _utc(macro_frame["published_at"], p, "published_at"),
            macro_frame["value"],
            strict=True,
        )
    ]
    p = folder / "flow.csv"
    flow_frame = _read(p, FLOW_COLUMNS, dtype={"symbol": str, "kind": str})
    flow = [
        FlowPoint(
            symbol=s, kind=k, ts=t.to_pydatetime(), published_at=pub.to_pydatetime(), value=float(v)
        )
        for s, k, t, pub, v in zip(
            flow_frame["symbol"],
            flow_frame["kind"],
            _utc(flow_frame["ts"], p, "ts"),
            _utc(flow_frame["published_at"], p, "published_at"),
            flow_frame["value"],
            strict=True,
        )
    ]
    return SimulationResult(
        bars=bars,
        news=news,
        macro=macro,
        flow=flow,
        oracle=oracle,
        asset_classes=classes,
        manifest=manifest,
    )
