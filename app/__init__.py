"""Seed trader: multi-modal 5-minute direction prediction, a deterministic risk layer, Ray."""
