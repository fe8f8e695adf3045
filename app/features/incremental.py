"""The incremental engine: one new bar in, one feature row out, O(1) work per indicator.

Running EMAs and Wilder averages, ring buffers of at most ``max(z_window, bb_period, ...)``
values for windows, and the side-input state of ``side_state``. It follows the batch engine's
definitions step for step (same seeding, same window statistics), which the parity tests
check on every real OHLCV file. ``to_state``/``from_state`` give a JSON-able checkpoint so a
streaming actor can stop and resume without replaying history.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from app.errors import InputError
from app.features.rolling import BAR_NS, zscore_last
from app.features.side_inputs import SideInputs
from app.features.side_state import SideState
from app.features.spec import FeatureSpec
from app.types import AssetClass, Bar

NAN = math.nan


def _json_float(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _float(x: float | None) -> float:
    return NAN if x is None else float(x)


class IncrementalFeatures:
    """Feature rows of one symbol, bar by bar, equal to ``build_features`` on the same history."""

    def __init__(self, spec: FeatureSpec, symbol: str, asset_class: AssetClass | str) -> None:
        if AssetClass(asset_class) is not spec.asset_class:
            raise InputError(
                f"asset_class={asset_class!r}: the spec was built for {spec.asset_class.value!r}"
            )
        self.spec = spec
        self.symbol = symbol
        self.asset_class = spec.asset_class
        self.names = spec.feature_names
        self.side = SideState(spec, symbol)
        self.n = 0
        self.last_ts_ns: int | None = None
        self.closes: deque[float] = deque(maxlen=max(max(spec.return_lags), spec.macd_slow))
        self.ema = dict.fromkeys(spec.ema_periods, NAN)
        self.ema_sum = dict.fromkeys(spec.ema_periods, 0.0)
        self.macd_fast = NAN
        self.macd_slow = NAN
        self.macd_line_sum = 0.0
        self.macd_signal = NAN
        self.rsi_gain = 0.0
        self.rsi_loss = 0.0
        self.highs: deque[float] = deque(maxlen=spec.stoch_k)
        self.lows: deque[float] = deque(maxlen=spec.stoch_k)
        self.fast_k: deque[float] = deque(maxlen=spec.stoch_slow_k)
        self.slow_k: deque[float] = deque(maxlen=spec.stoch_d)
        self.atr = 0.0
        self.bb: deque[float] = deque(maxlen=spec.bb_period)
        self.obv = 0.0
        self.vpt = 0.0
        self.obv_chg: deque[float] = deque(maxlen=spec.z_window)
        self.vpt_chg: deque[float] = deque(maxlen=spec.z_window)
        self.log_vol: deque[float] = deque(maxlen=spec.z_window)
        self.sq_ret: deque[float] = deque(maxlen=spec.rvol_window)

    # ------------------------------------------------------------------ per bar
    def update(self, bar: Bar, side: SideInputs | None = None) -> dict[str, float]:
        """Add one closed bar (and the side items known since the last one); return its row."""
        if bar.symbol != self.symbol:
            raise InputError(f"bar.symbol={bar.symbol!r}: this engine serves {self.symbol!r}")
        ts_ns = bar.ts_ns
        if self.last_ts_ns is not None and ts_ns <= self.last_ts_ns:
            raise InputError(f"bar.ts={bar.ts.isoformat()}: not after the previous bar")
        row = self._technical(bar.high, bar.low, bar.close, bar.volume)
        if side is not None:
            self.side.receive(side)
        row += self.side.update(ts_ns + BAR_NS)
        self.last_ts_ns = ts_ns
        self.n += 1
        return dict(zip(self.names, row, strict=True))

    def _technical(self, h: float, lo: float, c: float, v: float) -> list[float]:
        spec, i = self.spec, self.n
        closes = self.closes
        prev = closes[-1] if closes else NAN
        row = [
            math.log(c / closes[-lag]) if len(closes) >= lag else NAN for lag in spec.return_lags
        ]
        closes.append(c)

        # RSI (Wilder)
        p = spec.rsi_period
        rsi = NAN
        if i >= 1:
            d = c - prev
            gain = d if d > 0 else 0.0
            loss = -d if d < 0 else 0.0
            if i < p:
                self.rsi_gain += gain
                self.rsi_loss += loss
            else:
                if i == p:
                    self.rsi_gain = (self.rsi_gain + gain) / p
                    self.rsi_loss = (self.rsi_loss + loss) / p
                else:  # Wilder, in TA-Lib's arithmetic (it multiplies by 1/p)
                    self.rsi_gain = (self.rsi_gain * (p - 1) + gain) * (1.0 / p)
                    self.rsi_loss = (self.rsi_loss * (p - 1) + loss) * (1.0 / p)
                total = self.rsi_gain + self.rsi_loss
                rsi = 100.0 * (self.rsi_gain / total) if total != 0.0 else 0.0
        row.append(rsi)

        # MACD: both EMAs seeded at bar slow-1
        slow, fast, sig = spec.macd_slow, spec.macd_fast, spec.macd_signal
        line = signal = NAN
        if i == slow - 1:
            window = list(closes)
            self.macd_slow = sum(window[-slow:]) / slow
            self.macd_fast = sum(window[-fast:]) / fast
        elif i >= slow:  # TA-Lib's EMA step
            ks, kf = 2.0 / (slow + 1), 2.0 / (fast + 1)
            self.macd_slow = (c - self.macd_slow) * ks + self.macd_slow
            self.macd_fast = (c - self.macd_fast) * kf + self.macd_fast
        if i >= slow - 1:
            line = self.macd_fast - self.macd_slow
            seed_at = slow - 1 + sig - 1
            if i < seed_at:
                self.macd_line_sum += line
            elif i == seed_at:
                self.macd_signal = (self.macd_line_sum + line) / sig
                signal = self.macd_signal
            else:
                k = 2.0 / (sig + 1)
                self.macd_signal = (line - self.macd_signal) * k + self.macd_signal
                signal = self.macd_signal
        row += [line, signal, line - signal]

        # Stochastic (SMA slowing)
        self.highs.append(h)
        self.lows.append(lo)
        stoch_k = stoch_d = NAN
        if len(self.highs) == spec.stoch_k:
            ll = min(self.lows)
            diff = (max(self.highs) - ll) / 100.0
            self.fast_k.append((c - ll) / diff if diff != 0.0 else 0.0)
            if len(self.fast_k) == spec.stoch_slow_k:
                stoch_k = sum(self.fast_k) / spec.stoch_slow_k
                self.slow_k.append(stoch_k)
                if len(self.slow_k) == spec.stoch_d:
                    stoch_d = sum(self.slow_k) / spec.stoch_d
        row += [stoch_k, stoch_d]

        # ATR (Wilder over true range, which needs the previous close)
        p = spec.atr_period
        atr = NAN
        if i >= 1:
            tr = max(h - lo, abs(h - prev), abs(lo - prev))
            if i < p:
                self.atr += tr
            else:
                if i == p:
                    self.atr = (self.atr + tr) / p
                else:  # Wilder, as TA-Lib's ATR (agrees with it to an ulp or two)
                    self.atr = (self.atr * (p - 1) + tr) / p
                atr = self.atr
        row += [atr, atr / c]

        # Bollinger width
        bb = self.bb
        bb.append(c)
        width = NAN
        if len(bb) == spec.bb_period:
            n = spec.bb_period
            mean = sum(bb) / n
            std = math.sqrt(sum([(x - mean) * (x - mean) for x in bb]) / n)
            width = ((mean + spec.bb_k * std) - (mean - spec.bb_k * std)) / mean
        row.append(width)

        # EMA distances
        for period in spec.ema_periods:
            if i < period - 1:
                self.ema_sum[period] += c
                row.append(NAN)
                continue
            if i == period - 1:
                value = (self.ema_sum[period] + c) / period
            else:  # TA-Lib's EMA step
                value = (c - self.ema[period]) * (2.0 / (period + 1)) + self.ema[period]
            self.ema[period] = value
            row.append(c / value - 1.0)

        # OBV / VPT changes, realized vol, volume
        z = spec.z_window
        obv_z = vpt_z = rvol = NAN
        if i >= 1:
            d = c - prev
            obv_change = v if d > 0 else (-v if d < 0 else 0.0)
            vpt_change = v * ((c - prev) / prev)
            self.obv += obv_change
            self.vpt += vpt_change
            self.obv_chg.append(obv_change)
            self.vpt_chg.append(vpt_change)
            if len(self.obv_chg) == z:
                obv_z = zscore_last(self.obv_chg)
                vpt_z = zscore_last(self.vpt_chg)
            r = math.log(c / prev)
            self.sq_ret.append(r * r)
            if len(self.sq_ret) == spec.rvol_window:
                rvol = math.sqrt(sum(self.sq_ret) / spec.rvol_window)
        else:
            self.obv = v
        self.log_vol.append(math.log1p(v))
        volume_z = zscore_last(self.log_vol) if len(self.log_vol) == z else NAN
        row += [obv_z, vpt_z, rvol, volume_z]
        return row

    @property
    def raw(self) -> dict[str, float]:
        """Raw running values kept as state but not model features (OBV, VPT, EMAs)."""
        out = {"obv": self.obv, "vpt": self.vpt}
        out.update({f"ema_{p}": v for p, v in self.ema.items()})
        return out

    @property
    def rejected(self) -> dict[str, int]:
        """Side items rejected so far, by reason."""
        return dict(self.side.rejected)

    # ------------------------------------------------------------------ checkpoint
    _SCALARS = ("n", "last_ts_ns", "macd_fast", "macd_slow", "macd_line_sum", "macd_signal",
                "rsi_gain", "rsi_loss", "atr", "obv", "vpt")  # fmt: skip
    _RINGS = ("closes", "highs", "lows", "fast_k", "slow_k", "bb", "obv_chg", "vpt_chg",
              "log_vol", "sq_ret")  # fmt: skip

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot (NaN written as null) that ``from_state`` resumes exactly."""
        state: dict[str, Any] = {
            "version": 1,
            "spec": self.spec.to_dict(),
            "symbol": self.symbol,
            "side": self.side.to_state(),
            "ema": {str(p): _json_float(v) for p, v in self.ema.items()},
            "ema_sum": {str(p): v for p, v in self.ema_sum.items()},
        }
        for key in self._SCALARS:
            state[key] = _json_float(getattr(self, key))
        for key in self._RINGS:
            state[key] = list(getattr(self, key))
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IncrementalFeatures:
        if state.get("version") != 1:
            raise InputError(f"state.version={state.get('version')!r}: expected 1")
        spec = FeatureSpec.from_dict(state["spec"])
        self = cls(spec, state["symbol"], spec.asset_class)
        self.side = SideState.from_state(spec, self.symbol, state["side"])
        self.ema = {int(p): _float(v) for p, v in state["ema"].items()}
        self.ema_sum = {int(p): float(v) for p, v in state["ema_sum"].items()}
        for key in self._SCALARS:
            value = state[key]
            if key in ("n", "last_ts_ns"):
                setattr(self, key, value)
            else:
                setattr(self, key, _float(value))
        for key in self._RINGS:
            getattr(self, key).extend(state[key])
        return self
