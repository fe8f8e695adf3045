"""SignalBook: the latest signal per ticker and the two-bar staleness rule on a replay clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.clock import ReplayClock
from app.serve.state import SignalBook, SignalView
from app.types import BAR_INTERVAL, InvalidField, RiskState
from tests.builders import T0
from tests.unit.serve.serve_builders import close_of, signal_at


def _view(i: int, ticker: str = "BTCUSDT") -> SignalView:
    signal, decision = signal_at(i, ticker)
    return SignalView.from_decision(signal, decision, T0 + close_of(i))


def test_staleness_flips_after_two_bars_on_a_replay_clock() -> None:
    clock = ReplayClock(T0 + close_of(10))
    book = SignalBook(clock, stale_bars=2)
    book.put(_view(10))
    fresh = book.read("BTCUSDT")
    assert fresh is not None and fresh.age_s == 0.0 and not fresh.stale
    clock.advance_to(T0 + close_of(12))  # two bar closes without a new signal: still fresh
    status = book.read("BTCUSDT")
    assert status is not None and status.age_s == 600.0 and not status.stale
    clock.advance_to(T0 + close_of(12) + timedelta(seconds=1))
    assert book.read("BTCUSDT").stale  # type: ignore[union-attr]
    book.put(_view(12))  # a new bar's signal: fresh again
    assert not book.read("BTCUSDT").stale  # type: ignore[union-attr]


def test_stale_limit_is_configurable_and_checked() -> None:
    clock = ReplayClock(T0 + close_of(13))
    book = SignalBook(clock, stale_bars=5)
    book.put(_view(10))
    assert not book.read("BTCUSDT").stale  # type: ignore[union-attr]
    clock.advance_to(T0 + close_of(15) + timedelta(microseconds=1))
    assert book.read("BTCUSDT").stale  # type: ignore[union-attr]
    with pytest.raises(InvalidField, match="stale_bars"):
        SignalBook(clock, stale_bars=0)


def test_an_older_signal_never_replaces_a_newer_one() -> None:
    book = SignalBook(ReplayClock(T0 + close_of(7)))  # bar 5: fresh; bar 3: stale
    assert book.put(_view(5))
    assert not book.put(_view(4))
    assert book.put(_view(5))  # the same bar again (a recompute) is kept
    assert book.get("BTCUSDT").as_of == T0 + 5 * BAR_INTERVAL  # type: ignore[union-attr]
    book.put(_view(3, "ETHUSDT"))
    assert book.tickers() == ("BTCUSDT", "ETHUSDT") and len(book) == 2
    statuses = book.read_all()
    assert [s.view.ticker for s in statuses] == ["BTCUSDT", "ETHUSDT"]
    assert statuses[1].stale and not statuses[0].stale
    assert book.read("XRPUSDT") is None


def test_age_is_never_negative_before_the_bar_closes() -> None:
    book = SignalBook(ReplayClock(T0))
    book.put(_view(0))  # known at T0 + 5m, clock still at T0
    assert book.read("BTCUSDT").age_s == 0.0  # type: ignore[union-attr]


def test_view_takes_the_risk_verdict_and_refuses_mismatches() -> None:
    signal, decision = signal_at(1)
    view = SignalView.from_decision(signal, decision, T0 + close_of(1))
    assert view.risk_state is RiskState.ACTIVE and view.risk_reasons == ("signal_hold",)
    assert view.known_at == T0 + close_of(1)
    _, other = signal_at(1, "ETHUSDT")
    with pytest.raises(InvalidField, match="RiskDecision.symbol='ETHUSDT'"):
        SignalView.from_decision(signal, other, T0)
    bare = type(signal)(signal.ticker, signal.ts, signal.action, 0.8)
    with pytest.raises(InvalidField, match="Signal.probs=None"):
        SignalView.from_decision(bare, decision, T0)
