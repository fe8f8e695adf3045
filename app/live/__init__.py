"""The live half's plain classes: replay sources and the per-asset-class feed worker.

Everything here runs and is tested without Ray; ``app/actors`` wraps it in thin actor shells.
"""
