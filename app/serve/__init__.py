"""serve layer (see docs/DESIGN.md)."""
