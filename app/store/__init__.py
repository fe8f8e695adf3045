"""store layer (see docs/DESIGN.md)."""
