"""Side-source benchmark: parse speed of each adapter and the cost of writing to the store.

Measured in one run: the CSV replays of ../shared/data (two Fear & Greed files, the Coin
Metrics export) read + written to a DuckDB file and re-written (idempotent); a synthetic FINRA
file of ``--finra-rows`` rows; a ``--feed-entries``-entry RSS feed and a reddit listing served
by a loopback HTTP server, fetched and parsed.

    .venv/bin/python bench/side_sources.py
    .venv/bin/python bench/side_sources.py --finra-rows 10000 --feed-entries 500

The last line of stdout is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.sources.flow_sources import parse_finra_short_volume, read_coinmetrics_csv  # noqa: E402
from app.sources.http import HttpClient, HttpPolicy  # noqa: E402
from app.sources.macro_sources import read_macro_csv  # noqa: E402
from app.sources.news_feeds import fetch_feed  # noqa: E402
from app.sources.side_batch import flow_frame, macro_frame  # noqa: E402
from app.sources.social import fetch_reddit_new  # noqa: E402
from app.store import open_store  # noqa: E402
from tests.unit.sources.side_loopback import LoopbackServer, json_answer, text_answer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def finra_text(rows: int) -> str:
    lines = ["Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market"]
    lines += [f"20250602|S{i:05d}|{1000 + i}|0|{5000 + 2 * i}|B,Q,N" for i in range(rows)]
    return "\n".join(lines) + "\n"


def rss_feed(entries: int) -> bytes:
    t0 = datetime(2025, 6, 2, tzinfo=UTC)
    items = "".join(
        f"<item><title>Apple headline number {i}</title><guid>g{i}</guid>"
        f"<pubDate>{(t0 + timedelta(minutes=i)).strftime('%a, %d %b %Y %H:%M:%S GMT')}"
        f"</pubDate><description>&lt;p&gt;Body {i}&lt;/p&gt;</description></item>"
        for i in range(entries)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{items}'.encode() + (
        b"</channel></rss>"
    )


def reddit_listing(posts: int) -> dict:
    children = [
        {"kind": "t3", "data": {"id": f"p{i}", "title": f"post {i}", "selftext": "",
                                "created_utc": 1748822400 + i, "permalink": f"/r/x/{i}/"}}
        for i in range(posts)
    ]  # fmt: skip
    return {"kind": "Listing", "data": {"after": None, "children": children}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--finra-rows", type=int, default=10_000)
    parser.add_argument("--feed-entries", type=int, default=500)
    args = parser.parse_args()
    out: dict[str, Any] = {}

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"duckdb:///{tmp}/bench.db")
        try:
            for label, path, read, table, to_frame in (
                ("fear_greed_alternative_me", SHARED / "fear_greed" /
                 "crypto_fear_greed_alternative_me.csv", read_macro_csv, "macro", macro_frame),
                ("fear_greed_cnn", SHARED / "fear_greed" / "cnn_fear_greed.csv",
                 read_macro_csv, "macro", macro_frame),
                ("coinmetrics_btc", SHARED / "onchain_coinmetrics_btc" / "btc_daily.csv",
                 lambda p: read_coinmetrics_csv(p, symbol="BTCUSDT"), "flow", flow_frame),
            ):  # fmt: skip
                if not path.is_file():
                    out[label] = "skipped: shared data absent"
                    continue
                batch, t_read = timed(lambda p=path, r=read: r(p))
                frame = to_frame(batch.items)
                written, t_write = timed(lambda t=table, f=frame: store.write(t, f))
                again, t_again = timed(lambda t=table, f=frame: store.write(t, f))
                out[label] = {
                    "rows": batch.rows_read,
                    "points": len(batch.items),
                    "read_s": round(t_read, 4),
                    "write_s": round(t_write, 4),
                    "written": written,
                    "rewrite_s": round(t_again, 4),
                    "rewritten": again,
                }
        finally:
            store.close()

    text = finra_text(args.finra_rows)
    batch, t_finra = timed(lambda: parse_finra_short_volume(text, where="bench"))
    out["finra_parse"] = {
        "rows": batch.rows_read,
        "points": len(batch.items),
        "s": round(t_finra, 4),
        "rows_per_s": round(batch.rows_read / t_finra),
    }

    with LoopbackServer() as server:
        server.route("/rss.xml", text_answer(rss_feed(args.feed_entries), "application/rss+xml"))
        server.route("/r/x/new.json", json_answer(reddit_listing(100)))
        with HttpClient(HttpPolicy(timeout_s=10, retries=0)) as http:
            feed, t_feed = timed(lambda: fetch_feed(http, f"{server.url}/rss.xml"))
            posts, t_reddit = timed(lambda: fetch_reddit_new(http, "x", base_url=server.url))
    out["rss_fetch_parse"] = {"entries": len(feed.items), "s": round(t_feed, 4)}
    out["reddit_fetch_parse"] = {"posts": len(posts.items), "s": round(t_reddit, 4)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
