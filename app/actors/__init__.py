"""actors layer (see docs/DESIGN.md)."""
