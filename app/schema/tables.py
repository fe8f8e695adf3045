"""The store's tables: columns and keys, shared by the sources that shape rows and the backends.

Below both ``app.sources`` and ``app.store`` (DESIGN.md, Layers), so an adapter can build rows
of a table without importing a database backend.
"""

from __future__ import annotations

# Table name -> ordered columns. ``ts`` is always the designated timestamp.
TABLES: dict[str, tuple[str, ...]] = {
    "bars": ("symbol", "ts", "open", "high", "low", "close", "volume"),
    "news": ("id", "ts", "source", "title", "body", "symbols", "url", "topic"),
    "sentiment": ("symbol", "ts", "news_id", "score", "model"),
    "macro": ("symbol", "ts", "published_at", "value"),  # symbol = series name
    "flow": ("symbol", "ts", "kind", "published_at", "value"),
    "signals": (
        "symbol",
        "ts",
        "signal",
        "confidence",
        "p_up",
        "p_down",
        "p_flat",
        "model_version",
    ),
    "orders": (
        "symbol",
        "ts",
        "client_order_id",
        "side",
        "qty",
        "type",
        "limit_price",
        "stop_price",
        "stop_loss",
        "take_profit",
        "reduce_only",
        # the execution engine's view of the order (app/broker/order_state.py), upserted
        "status",
        "filled_qty",
        "avg_fill_price",
        "venue_order_id",
        "role",
        "parent",
        "attempts",
        "message",
        "external",
    ),
    "fills": (
        "symbol",
        "ts",
        "client_order_id",
        "side",
        "qty",
        "price",
        "fee",
        "reason",
        "fill_id",  # the venue's trade id: one row per fill, ever
        "seq",  # the engine's booking order (several fills can share a ts)
        "cursor",  # the venue's fills cursor after the page that brought this fill
    ),
    "equity": ("symbol", "ts", "equity", "drawdown", "risk_state"),  # symbol = account
    # One row per symbol: its asset class, written by ingest (ts is always SYMBOLS_TS).
    "symbols": ("symbol", "ts", "asset_class"),
}

# Columns that make a row unique (the dedup / upsert key).
KEYS: dict[str, tuple[str, ...]] = {
    "bars": ("symbol", "ts"),
    "news": ("id", "ts"),
    "sentiment": ("symbol", "ts", "news_id", "model"),  # one score per item per model
    "macro": ("symbol", "ts"),
    "flow": ("symbol", "ts", "kind"),
    "signals": ("symbol", "ts"),
    "orders": ("client_order_id", "ts"),
    "fills": ("fill_id", "ts"),
    "equity": ("symbol", "ts"),
    "symbols": ("symbol", "ts"),
}
