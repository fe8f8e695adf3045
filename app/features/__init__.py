"""features layer (see docs/DESIGN.md)."""
