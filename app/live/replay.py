"""Replay sources: recorded bars (and side inputs) emitted in time order, as a live feed would.

A replay reads a ``<SYMBOL>_5m.csv`` file, a folder of them (``asset_class`` given, as
elsewhere), a simulator folder (classes, names and aliases from its manifest; news, macro and
flow from its files) or a store URL (``duckdb:///...``). Bars go through ``app.schema``
validation: rejected rows are counted per symbol and reason (``ReplayData.rejected``), never
dropped silently.

Order of emission (one asset class): every item is emitted at the time it becomes known: a bar
at its close (``ts + 5 min``), a side item at its ``published_at``. A side item published at or
before a bar's close comes before that bar, so the bar's feature row sees it, exactly as the
batch engine's as-of rule does. Bars of one close time come in symbol order.

``speed``: N bars per second per ticker (each bar close step of the class waits until
``start + k / N``), or None for as fast as the consumer takes them.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from app.config import Asset
from app.errors import InputError
from app.live.items import FeedItem, ResumePoint, SideItem
from app.schema.bar_files import CsvSource, symbol_from_filename
from app.schema.bars import RAW_COLUMNS, validate_bars
from app.sim.files import load_simulation
from app.sim.manifest import MANIFEST_FILE
from app.types import BAR_NS, AssetClass, Bar, FlowPoint, MacroPoint, NewsItem, to_ns

_SIDE_RANK = {NewsItem: 0, MacroPoint: 1, FlowPoint: 2}


@dataclass(frozen=True)
class ReplayData:
    """Validated bars and side items of one recording, in memory."""

    asset_classes: dict[str, AssetClass]  # symbol -> class
    bars: dict[str, pd.DataFrame]  # symbol -> store bar columns, sorted by ts
    news: tuple[NewsItem, ...] = ()
    macro: tuple[MacroPoint, ...] = ()
    flow: tuple[FlowPoint, ...] = ()
    assets: tuple[Asset, ...] = ()  # names and aliases for the headline tagger
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)  # symbol -> reason -> n
    source: str = ""

    def symbols(self, asset_class: AssetClass | str) -> tuple[str, ...]:
        cls = AssetClass(asset_class)
        return tuple(s for s, c in self.asset_classes.items() if c is cls)

    @property
    def classes(self) -> tuple[AssetClass, ...]:
        return tuple(dict.fromkeys(self.asset_classes.values()))


# --------------------------------------------------------------------------- loading


def load_replay(
    source: str | Path,
    asset_class: AssetClass | str | None = None,
    symbols: Sequence[str] | None = None,
) -> ReplayData:
    """Dispatch on ``source``: store URL, simulator folder, CSV folder or CSV file."""
    text = str(source)
    if "://" in text:
        if asset_class is None or not symbols:
            raise InputError(f"replay {text}: a store replay needs asset_class and symbols")
        return load_store_replay(text, symbols, AssetClass(asset_class))
    path = Path(source)
    if path.is_dir() and (path / MANIFEST_FILE).is_file():
        return load_sim_replay(path, asset_class, symbols)
    if asset_class is None:
        raise InputError(f"replay {path}: --asset-class is required for OHLCV files")
    return load_csv_replay(path, AssetClass(asset_class), symbols)


def _validated(raw: pd.DataFrame, symbol: str, rejected: dict[str, dict[str, int]]) -> pd.DataFrame:
    result = validate_bars(raw.loc[:, list(RAW_COLUMNS)], symbol)
    if result.rows_rejected:
        rejected[symbol] = result.nonzero_counts()
    return result.good.reset_index(drop=True)


def _pick(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    if not wanted:
        return list(available)
    missing = [s for s in wanted if s not in available]
    if missing:
        raise InputError(f"symbols {missing}: not in {where} (have {sorted(available)})")
    return list(wanted)


def load_csv_replay(
    path: Path, asset_class: AssetClass, symbols: Sequence[str] | None = None
) -> ReplayData:
    if path.is_dir():
        files = sorted(path.glob("*_5m.csv"))
        if not files:
            raise InputError(f"replay {path}: folder holds no <SYMBOL>_5m.csv files")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"replay {path}: no such file or folder")
    by_symbol = {symbol_from_filename(f): f for f in files}
    chosen = _pick(list(by_symbol), symbols, f"the files of {path}")
    bars, rejected = {}, {}
    for sym in chosen:
        result = CsvSource(by_symbol[sym]).load(sym)
        if result.rows_rejected:
            rejected[sym] = result.nonzero_counts()
        bars[sym] = result.good.reset_index(drop=True)
    return ReplayData(
        asset_classes=dict.fromkeys(chosen, asset_class),
        bars=bars,
        rejected=rejected,
        source=f"csv:{path}",
    )


def load_sim_replay(
    path: Path, asset_class: AssetClass | str | None = None, symbols: Sequence[str] | None = None
) -> ReplayData:
    result = load_simulation(path)
    classes = dict(result.asset_classes)
    if asset_class is not None:
        cls = AssetClass(asset_class)
        classes = {s: c for s, c in classes.items() if c is cls}
    chosen = _pick(list(classes), symbols, f"the simulation at {path}")
    rejected: dict[str, dict[str, int]] = {}
    bars = {s: _validated(result.bars[s], s, rejected) for s in chosen}
    wanted = set(chosen)
    return ReplayData(
        asset_classes={s: classes[s] for s in chosen},
        bars=bars,
        news=tuple(n for n in result.news if wanted & set(n.symbols)),
        macro=tuple(result.macro),
        flow=tuple(f for f in result.flow if f.symbol in wanted),
        assets=tuple(result.manifest.assets[s] for s in chosen),
        rejected=rejected,
        source=f"simulation:{path}",
    )


def load_store_replay(url: str, symbols: Sequence[str], asset_class: AssetClass) -> ReplayData:
    """Bars, news, macro and flow of ``symbols`` from a store."""
    from app.store import open_store

    store = open_store(url)
    try:
        rejected: dict[str, dict[str, int]] = {}
        bars = {}
        for s in symbols:
            frame = store.read_bars(s)
            if frame.empty:
                raise InputError(f"symbol={s!r}: no bars in store {url}")
            bars[s] = _validated(frame, s, rejected)
        news = store_news(store.read("news"), set(symbols))
        macro = store.read("macro")
        flow = store.read("flow")
    finally:
        store.close()
    return ReplayData(
        asset_classes=dict.fromkeys(symbols, asset_class),
        bars=bars,
        news=news,
        macro=tuple(
            MacroPoint(r.symbol, r.ts.to_pydatetime(), r.published_at.to_pydatetime(), r.value)
            for r in macro.itertuples(index=False)
        ),
        flow=tuple(
            FlowPoint(
                r.symbol, r.kind, r.ts.to_pydatetime(), r.published_at.to_pydatetime(), r.value
            )  # fmt: skip
            for r in flow.itertuples(index=False)
            if r.symbol in set(symbols)
        ),
        rejected=rejected,
        source=f"store:{url}",
    )


def store_news(frame: pd.DataFrame, symbols: set[str] | None = None) -> tuple[NewsItem, ...]:
    """A store's ``news`` rows as the items a feed stored (``symbols`` is ``|``-joined; an empty
    cell is ""), those tagged with none of ``symbols`` left out (None: every row)."""
    out = []
    for r in frame.itertuples(index=False):
        tagged = tuple(s for s in _text(r.symbols).split("|") if s)
        if symbols is not None and tagged and not symbols & set(tagged):
            continue
        out.append(
            NewsItem(
                id=str(r.id),
                published_at=r.ts.to_pydatetime(),
                source=_text(r.source),
                title=_text(r.title),
                body=_text(r.body),
                symbols=tagged,
                url=_text(r.url),
                topic=_text(r.topic),
            )  # fmt: skip
        )
    return tuple(out)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""  # a missing cell reads as NaN or None


# --------------------------------------------------------------------------- emission


def _bars_of(frame: pd.DataFrame, symbol: str) -> list[Bar]:
    ts = frame["ts"].astype("datetime64[ns, UTC]")
    cols = [frame[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")]
    return [Bar(symbol, t.to_pydatetime(), *(float(c[i]) for c in cols)) for i, t in enumerate(ts)]


def side_stream(data: ReplayData, asset_class: AssetClass | str) -> list[SideItem]:
    """The class's side items in emission order: (published_at, news|macro|flow, file order)."""
    symbols = set(data.symbols(asset_class))
    items: list[SideItem] = [n for n in data.news if not n.symbols or symbols & set(n.symbols)]
    items += list(data.macro)
    items += [f for f in data.flow if f.symbol in symbols]
    keyed = sorted(
        enumerate(items), key=lambda p: (to_ns(p[1].published_at), _SIDE_RANK[type(p[1])], p[0])
    )
    return [item for _, item in keyed]


class Replay:
    """One asset class of a recording, emitted in time order at ``speed``.

    ``items(resume)`` yields ``Bar``/``NewsItem``/``MacroPoint``/``FlowPoint``; with a
    ``ResumePoint`` it skips bars at or before each symbol's ``bars_after`` and the first
    ``side_seen`` side items, so a restarted feed continues without gap or duplicate.
    ``on_close`` (e.g. ``ReplayClock.advance_to``) is called with each new bar close time
    before its bars are yielded.
    """

    def __init__(
        self,
        data: ReplayData,
        asset_class: AssetClass | str,
        *,
        speed: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_close: Callable[..., object] | None = None,
    ) -> None:
        if speed is not None and not speed > 0:
            raise InputError(f"speed={speed!r}: bars per second must be > 0 (or max)")
        self.data = data
        self.asset_class = AssetClass(asset_class)
        self.symbols = data.symbols(self.asset_class)
        if not self.symbols:
            raise InputError(f"asset_class={self.asset_class.value!r}: no symbols in {data.source}")
        self.speed = speed
        self._sleep, self._monotonic, self._on_close = sleep, monotonic, on_close

    @property
    def side_items(self) -> list[SideItem]:
        return side_stream(self.data, self.asset_class)

    def bar_count(self) -> int:
        return sum(len(self.data.bars[s]) for s in self.symbols)

    def items(self, resume: ResumePoint | None = None) -> Iterator[FeedItem]:
        resume = resume or ResumePoint()
        bars = [
            (b.ts_ns + BAR_NS, 1, k, b)
            for k, s in enumerate(self.symbols)
            for b in _bars_of(self.data.bars[s], s)
            if resume.wants_bar(b)
        ]
        bars.sort(key=lambda e: (e[0], e[2]))
        side = [
            (to_ns(item.published_at), 0, i, item)
            for i, item in enumerate(self.side_items)
            if i >= resume.side_seen
        ]
        start, step, last_close = self._monotonic(), 0, None
        for close_ns, _, _, item in heapq.merge(side, bars, key=lambda e: e[:3]):
            if isinstance(item, Bar) and close_ns != last_close:
                last_close = close_ns
                if self.speed is not None:
                    step += 1
                    wait = start + step / self.speed - self._monotonic()
                    if wait > 0:
                        self._sleep(wait)
                if self._on_close is not None:
                    self._on_close(item.close_time)
            yield item


def parse_speed(text: str | float | None) -> float | None:
    """``--speed``: a positive number of bars per second per ticker, or ``max`` (None)."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "max"):
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise InputError(f"--speed={text!r}: expected a number of bars per second or max") from exc
    if not value > 0:
        raise InputError(f"--speed={text!r}: must be > 0")
    return value
