"""Frame definitions shared below sources, store, tuning and backtest (DESIGN.md, Layers).

``bars``: the store's bar columns, the reject reasons and :func:`bars.validate_bars`, which
every price frame passes. ``bar_files``: the OHLCV file layouts (CSV/Parquet, column
mappings, 1-minute resampling) read into validated bar frames. Imports only app.types and
app.errors, so adapters (app.sources) and consumers (app.tuning, app.backtest) can share them.
"""
