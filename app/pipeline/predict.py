"""``predict``: one model version over a whole series in one pass (the batch twin of ``live``).

The inputs are the ones a live replay emits (``app.live.replay.ReplayData``: validated bars,
raw headlines, macro and flow), so ``predict`` and ``live --replay`` see the same data. The
features come from the batch engine with the bundle's feature spec, the news-impact columns
from the bundle's fitted ridge (``impact_columns``, as walk-forward fills them), and every bar
whose ``lookback`` window is complete and finite gets a signal: ``ts`` = the bar the signal was
computed on (as ``backtest --signals`` reads it), mapped as DESIGN.md "Signals" says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.errors import InputError
from app.features.batch import build_features
from app.live.headlines import HeadlineScorer
from app.live.replay import ReplayData, side_stream
from app.live.window_spec import WindowSpec
from app.models.bundle import ModelBundle
from app.models.signals import signals_from_probs
from app.text.impact import headline_events, impact_columns
from app.types import AssetClass, FlowPoint, MacroPoint, NewsItem, to_ns

if TYPE_CHECKING:
    from app.text.sentiment import SentimentModel

SIGNALS_CSV_COLUMNS: tuple[str, ...] = (
    "ts", "ticker", "signal", "confidence", "p_up", "p_down", "p_flat", "model_version",
)  # fmt: skip


@dataclass(frozen=True)
class PredictSettings:
    batch_size: int = 4096  # windows per forward pass
    device: str = "cpu"


@dataclass(frozen=True)
class PredictInputs:
    """One asset class's frames for the batch engine (the shapes ``build_features`` takes)."""

    asset_class: AssetClass
    bars: dict[str, pd.DataFrame]
    news: pd.DataFrame | None = None  # scored rows: published_at, symbol, news_id, score, topic_*
    news_embeddings: np.ndarray | None = None  # row-aligned with ``news``
    macro: pd.DataFrame | None = None
    flow: pd.DataFrame | None = None
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class PredictResult:
    signals: pd.DataFrame  # SIGNALS_CSV_COLUMNS, sorted by (ts, ticker)
    model_version: str
    bars: dict[str, int]
    rejected: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        counts = self.signals["signal"].value_counts().to_dict() if len(self.signals) else {}
        return {
            "model_version": self.model_version,
            "bars": self.bars,
            "signals": len(self.signals),
            "by_signal": {str(k): int(v) for k, v in counts.items()},
            "rejected_rows": self.rejected,
        }

    def write_csv(self, path: str | Path) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame = self.signals.copy()
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        frame.to_csv(out, index=False, float_format="%.9g")
        return out


def _utc(values: Sequence[Any]) -> pd.Series:
    ns = np.asarray([to_ns(v) for v in values], dtype=np.int64)
    return pd.Series(pd.to_datetime(ns, utc=True)).astype("datetime64[ns, UTC]")


def predict_inputs(
    data: ReplayData,
    asset_class: AssetClass | str,
    text_model: SentimentModel | None = None,
    *,
    embeddings: bool = False,
) -> PredictInputs:
    """Frames of ``asset_class`` from a replay's data; headlines scored with ``text_model``
    exactly as the live feed scores them (``HeadlineScorer``). No model: no news columns."""
    cls = AssetClass(asset_class)
    symbols = data.symbols(cls)
    side = side_stream(data, cls)
    news_items = [i for i in side if isinstance(i, NewsItem)]
    macro = [i for i in side if isinstance(i, MacroPoint)]
    flow = [i for i in side if isinstance(i, FlowPoint)]
    news = emb = None
    if text_model is not None and news_items:
        scored = HeadlineScorer(text_model, data.assets).score(news_items)
        if scored:
            topic_names = text_model.topic_names
            news = pd.DataFrame(
                {
                    "published_at": _utc([h.news.published_at for h in scored]),
                    "symbol": [h.news.symbol for h in scored],
                    "news_id": [h.news.news_id for h in scored],
                    "score": [h.news.score for h in scored],
                    **{
                        f"topic_{t}": [h.news.topics.get(t, 0.0) for h in scored]
                        for t in topic_names
                    },
                }
            )
            if embeddings:
                text_of = {n.id: n.text for n in news_items}
                emb = text_model.embed([text_of[h.news.news_id] for h in scored])
    return PredictInputs(
        asset_class=cls,
        bars={s: data.bars[s] for s in symbols},
        news=news,
        news_embeddings=emb,
        macro=pd.DataFrame(
            {
                "symbol": [m.name for m in macro],
                "ts": _utc([m.ts for m in macro]),
                "published_at": _utc([m.published_at for m in macro]),
                "value": [m.value for m in macro],
            }  # fmt: skip
        )
        if macro
        else None,
        flow=pd.DataFrame(
            {
                "symbol": [f.symbol for f in flow],
                "ts": _utc([f.ts for f in flow]),
                "kind": [f.kind for f in flow],
                "published_at": _utc([f.published_at for f in flow]),
                "value": [f.value for f in flow],
            }  # fmt: skip
        )
        if flow
        else None,
        rejected={s: r for s, r in data.rejected.items() if s in symbols},
        source=data.source,
    )


def feature_matrix(
    window: WindowSpec, inputs: PredictInputs, symbol: str
) -> tuple[np.ndarray, np.ndarray]:
    """(ts int64 ns, X (n, len(window.feature_names)) float64) for one symbol, batch engine."""
    bars = inputs.bars[symbol]
    feats = build_features(
        bars,
        asset_class=inputs.asset_class,
        news=inputs.news,
        macro=inputs.macro,
        flow=inputs.flow,
        spec=window.spec,
    )
    x = feats[list(window.spec.feature_names)].to_numpy(np.float64)
    ts = bars["ts"].astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").astype(np.int64)
    if window.impact_columns:
        cols = np.zeros((len(x), 2))
        if window.impact_model is not None and inputs.news is not None:
            if inputs.news_embeddings is None:
                raise InputError(
                    "news_embeddings: the bundle's news-impact columns need the headlines' "
                    "embeddings (pass embeddings=True)"
                )
            rows = (inputs.news["symbol"] == symbol).to_numpy()
            pub = inputs.news.loc[rows, "published_at"].astype("datetime64[ns, UTC]")
            events = headline_events(
                ts,
                bars["close"].to_numpy(np.float64),
                pub.to_numpy("datetime64[ns]").astype(np.int64),
                inputs.news_embeddings[rows],
            )
            cols = impact_columns(ts, events, window.impact_model)
        x = np.hstack([x, cols])
    return ts, x


def window_ends(x: np.ndarray, lookback: int) -> np.ndarray:
    """Rows t whose window ``x[t-lookback+1 : t+1]`` is complete and finite."""
    bad = np.cumsum(~np.all(np.isfinite(x), axis=1))
    ends = np.arange(lookback - 1, len(x))
    before = np.where(ends - lookback >= 0, bad[np.maximum(ends - lookback, 0)], 0)
    return ends[bad[ends] - before == 0]


def predict_signals(
    bundle: ModelBundle,
    inputs: PredictInputs,
    *,
    model_version: str,
    settings: PredictSettings | None = None,
) -> PredictResult:
    settings = settings or PredictSettings()
    window = WindowSpec.from_bundle(bundle)
    if window.spec.asset_class is not inputs.asset_class:
        raise InputError(
            f"asset_class={inputs.asset_class.value!r}: model {model_version} was trained for "
            f"{window.spec.asset_class.value!r}"
        )
    frames = []
    for symbol in inputs.bars:
        ts, x = feature_matrix(window, inputs, symbol)
        ends = window_ends(x, window.lookback)
        if not len(ends):
            continue
        views = np.lib.stride_tricks.sliding_window_view(x, window.lookback, axis=0)
        probs = []
        ticker = bundle.ticker_ids([symbol]) if bundle.model_config.get("n_tickers", 0) else None
        for i in range(0, len(ends), settings.batch_size):
            chunk = ends[i : i + settings.batch_size]
            w = np.ascontiguousarray(views[chunk - window.lookback + 1].transpose(0, 2, 1))
            tk = None if ticker is None else np.repeat(ticker, len(chunk))
            probs.append(bundle.predict_proba(w, tk, settings.device))
        p = np.concatenate(probs)
        actions, confidence = signals_from_probs(p)
        frames.append(
            pd.DataFrame(
                {
                    "ts": pd.to_datetime(ts[ends], utc=True).astype("datetime64[ns, UTC]"),
                    "ticker": symbol,
                    "signal": [a.value for a in actions],
                    "confidence": confidence,
                    "p_up": p[:, 0],
                    "p_down": p[:, 1],
                    "p_flat": p[:, 2],
                    "model_version": model_version,
                }
            )
        )
    signals = (
        pd.concat(frames, ignore_index=True).sort_values(["ts", "ticker"], kind="stable")
        if frames
        else pd.DataFrame({c: pd.Series(dtype=object) for c in SIGNALS_CSV_COLUMNS})
    )
    return PredictResult(
        signals=signals.reset_index(drop=True).loc[:, list(SIGNALS_CSV_COLUMNS)],
        model_version=model_version,
        bars={s: len(f) for s, f in inputs.bars.items()},
        rejected=inputs.rejected,
    )
