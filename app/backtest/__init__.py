"""backtest layer (see docs/DESIGN.md)."""
