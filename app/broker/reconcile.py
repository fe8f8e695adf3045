"""Reconciliation: the venue is the truth for what was filled; adopt what happened while away.

Steps, in order (docs/EXECUTION.md):
1. fills after the stored cursor: each new fill id is stored and booked once (fills while down);
2. every local order that is still open is looked up by client id: a status the venue changed
   (filled, canceled outside, expired) is adopted; an order the venue never received is closed
   as EXPIRED (a stale decision is never resent); an order whose lookup fails stays UNKNOWN and
   its symbol REDUCING;
3. the venue's open orders that we do not know are adopted as external (a warning);
4. positions: a venue position on a symbol we hold nothing in is adopted as external (a warning,
   booked as an ``adopted`` fill); any other difference puts the risk engine in REDUCING with the
   reason, until an operator resumes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.broker.errors import VenueUnavailable
from app.broker.order_state import OrderRecord
from app.types import Fill, Order, OrderStatus, OrderType, Side, to_ns

if TYPE_CHECKING:
    from app.broker.execution import ExecutionEngine

log = logging.getLogger(__name__)
_S = OrderStatus


async def reconcile(engine: ExecutionEngine) -> dict[str, int]:
    """One reconciliation pass; returns counts of what it adopted or flagged."""
    counts = {"fills": 0, "orders_updated": 0, "orders_external": 0, "positions_adopted": 0}
    broker = engine.broker
    counts["fills"] = await engine.sync_fills()
    for rec in [r for r in engine.orders.values() if r.open and not r.external]:
        try:
            vo = await engine.retry(lambda r=rec: broker.fetch_order(r.client_order_id, r.symbol))
        except VenueUnavailable:
            engine._unresolved(rec)
            continue
        if vo is None:
            if rec.role in ("sl", "tp") and rec.status is _S.PENDING_SUBMIT:
                continue  # a native leg the venue shows only while its position lives
            new = rec.moved(_S.EXPIRED, engine.clock(), message="never_reached_venue")
            engine._save(new)
            if rec.client_order_id in engine.unresolved:
                engine._resolved(rec.client_order_id)
            counts["orders_updated"] += 1
            continue
        new = engine.apply_venue(rec, vo)
        if new.status is not rec.status:
            counts["orders_updated"] += 1
            if new.status is _S.CANCELED:
                _warn(engine, f"order {rec.client_order_id} was canceled outside the engine")
    for vo in await engine.retry(lambda: broker.open_orders(None)):
        if vo.client_order_id in engine.orders:
            continue
        _warn(
            engine, f"unknown open order {vo.client_order_id} on {vo.symbol}: adopted as external"
        )
        otype = vo.type
        order = Order(
            vo.client_order_id,
            vo.symbol,
            vo.side,
            vo.qty,
            vo.ts or engine.clock(),
            otype,
            limit_price=vo.limit_price if otype is OrderType.LIMIT else None,
            stop_price=vo.stop_price if otype is OrderType.STOP else None,
        )
        rec = OrderRecord(
            order,
            vo.status,
            role="external",
            external=True,
            updated=engine.clock(),
            venue_order_id=vo.venue_order_id,
        )
        engine._save(rec)
        counts["orders_external"] += 1
    counts["positions_adopted"] = await _positions(engine)
    engine.last_reconcile = engine.clock()
    engine.flush()  # what it adopted is stored before the engine trades again
    return counts


async def _positions(engine: ExecutionEngine) -> int:
    venue = await engine.retry(engine.broker.positions)
    local = engine.pf.positions()
    tol = engine.settings.position_tolerance
    adopted = 0
    for symbol in sorted(set(venue) | set(local)):
        v = venue[symbol].qty if symbol in venue else 0.0
        q = local[symbol].qty if symbol in local else 0.0
        if abs(v - q) <= tol * max(abs(v), abs(q), 1.0):
            continue
        if q == 0.0:
            pos = venue[symbol]
            _warn(engine, f"unknown position {symbol} qty={v:g} at the venue: adopted as external")
            now = engine.clock()
            fill = Fill(
                client_order_id=f"external-{symbol}-{to_ns(now) // 1_000_000}",
                symbol=symbol,
                side=Side.BUY if v > 0 else Side.SELL,
                qty=abs(v),
                price=pos.avg_price,
                fee=0.0,
                ts=now,
                reason="adopted",
                fill_id=f"adopted-{symbol}-{to_ns(now)}",
            )
            engine.journal.write_fill(fill, engine.seq, engine.cursor)
            engine.seq += 1
            engine.fill_ids.add(fill.fill_id)
            engine._book(fill, None)
            adopted += 1
            continue
        reason = f"position_mismatch:{symbol}:local={q:g}:venue={v:g}"
        log.error("reconciliation: %s; REDUCING until an operator resumes", reason)
        engine.warnings.append(reason)
        engine.reducing_reason = reason
        engine.risk.set_reducing(True)
    return adopted


def _warn(engine: ExecutionEngine, message: str) -> None:
    log.warning("reconciliation: %s", message)
    engine.warnings.append(message)
