"""broker layer (see docs/DESIGN.md)."""
