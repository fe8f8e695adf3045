"""The signal API and (later) the Ray Serve graph around it.

``api.build_api`` is a plain FastAPI app over a ``view.LiveView``; ``memory.MemoryLiveView`` is
the in-memory view the live worker fills. Ray is imported only by the Serve graph modules.
"""
