"""Thin Ray actor shells around plain classes (DESIGN.md, Layers): the logic they run is tested
without Ray; the shells add lifecycle (restart, placement) and messaging only."""
