"""The live loop: bar closes -> model -> risk -> execution, the same path for replay and live."""
