"""models layer (see docs/DESIGN.md)."""
