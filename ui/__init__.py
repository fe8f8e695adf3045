"""The Gradio control panel: talks to the signal API over HTTP only (docs/PANEL.md)."""
