"""Pure builders: API JSON in, DataFrames, Plotly figures and Markdown/HTML out (no IO)."""
