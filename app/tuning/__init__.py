"""tuning layer (see docs/DESIGN.md)."""
