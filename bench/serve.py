"""Signal API and bar-close benchmark (the plain worker path: uvicorn beside the session).

1. ``GET /v1/signals/{ticker}``: N concurrent clients for S seconds on the real API
   (``build_api`` over a ``MemoryLiveView`` holding a signal, keys and middleware on), and on a
   bare FastAPI app returning the same cached JSON, in the same run: p50 / p99 / req/s / errors.
2. Bar close -> signals for 10 tickers through model -> risk -> paper execution
   (``TradingSession.on_bar_close``): p50 / p99 over the replayed bars, with the model forward
   alone as the reference (``bench/bar_close.py``, which also runs on its own).

    .venv/bin/python bench/serve.py                  # 16 clients, 60 s per app
    .venv/bin/python bench/serve.py --seconds 20

The last stdout line is JSON; ``ratio_p99`` = API p99 / bare p99 (goal <= 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clock import ReplayClock  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.live.http import ApiServer  # noqa: E402
from app.serve.api import build_api  # noqa: E402


async def _load(url: str, path: str, headers: dict, clients: int, seconds: float) -> dict:
    lat: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def one(c: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                r = await c.get(path, headers=headers)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            lat.append(time.perf_counter() - t)
            errors += not ok

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as c:
        await asyncio.gather(*(one(c) for _ in range(clients)))
    ms = np.asarray(lat) * 1e3
    return {
        "requests": len(lat),
        "errors": errors,
        "req_per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def _bar_close_latency(tmp: Path, tickers: int) -> dict:
    """bench/bar_close.py's figure (p50 / p99, the model forward as reference)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bar_close import bar_close_latency

    return bar_close_latency(tmp, tickers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--tickers", type=int, default=10)
    args = ap.parse_args()
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        from tests.unit.serve.serve_builders import live_view, populate, tiny_registry

        settings = load_settings(registry_dir=tmp / "registry", api={"keys": [key]})
        tiny_registry(settings.registry_dir)
        from tests.builders import T0

        clock = ReplayClock(T0)
        view = live_view(settings, clock)
        populate(view, clock)
        api = ApiServer(build_api(view, settings), "127.0.0.1", 0)
        api_url = api.start()
        body = httpx.get(f"{api_url}/v1/signals/BTCUSDT", headers={"X-API-Key": key}).json()
        bare = FastAPI()

        @bare.get("/v1/signals/{ticker}")
        async def signal(ticker: str) -> dict:
            return body

        bare_server = ApiServer(bare, "127.0.0.1", 0)
        bare_url = bare_server.start()
        try:
            path = "/v1/signals/BTCUSDT"
            got_api = asyncio.run(
                _load(api_url, path, {"X-API-Key": key}, args.clients, args.seconds)
            )
            got_bare = asyncio.run(_load(bare_url, path, {}, args.clients, args.seconds))
        finally:
            api.stop()
            bare_server.stop()
        step = _bar_close_latency(tmp, args.tickers)
    out = {
        "clients": args.clients,
        "seconds": args.seconds,
        "api": got_api,
        "bare_fastapi": got_bare,
        "ratio_p99": round(got_api["p99_ms"] / got_bare["p99_ms"], 2),
        "bar_close": step,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
