"""risk layer (see docs/DESIGN.md)."""
