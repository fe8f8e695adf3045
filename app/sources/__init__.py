"""sources layer (see docs/DESIGN.md)."""
