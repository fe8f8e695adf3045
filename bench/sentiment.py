"""Sentiment throughput on CPU: headlines/s cold (every text encoded) and cached (all hits).

    .venv/bin/python bench/sentiment.py [--n 1000] [--batch-size 64] [--device cpu]

Headlines are the titles of ../shared/data/news_crypto_cryptonews (real text, ~12 tokens);
where that folder is absent, numbered variants of the written prototype phrases. Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import SentimentSettings  # noqa: E402
from app.sources.news_csv import read_news_csv  # noqa: E402
from app.text.prototypes import SENTIMENT_PROTOTYPES  # noqa: E402
from app.text.sentiment import SentimentModel  # noqa: E402
from app.text.tagging import score_news  # noqa: E402

SHARED = Path(
    os.environ.get("SHARED_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def headlines(n: int) -> tuple[list[str], str, list]:
    path = SHARED / "news_crypto_cryptonews" / "crypto_news.csv"
    if path.is_file():
        items = read_news_csv(path).items
        titles, seen, kept = [], set(), []
        for item in items:
            if item.title and item.title not in seen:
                seen.add(item.title)
                titles.append(item.title)
                kept.append(dataclasses.replace(item, body=""))  # title only: cached below
            if len(titles) == n:
                break
        return titles, str(path), kept
    phrases = [p for group in SENTIMENT_PROTOTYPES.values() for p in group]
    return [f"{phrases[i % len(phrases)]} ({i})" for i in range(n)], "prototypes", []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    texts, source, items = headlines(args.n)
    t0 = time.perf_counter()
    model = SentimentModel.load(
        SentimentSettings(batch_size=args.batch_size), head="zero-shot", device=args.device
    )
    load_s = time.perf_counter() - t0
    model.topic_intensity(["warm-up"])  # topic phrases encoded once, outside the timing

    t0, c0 = time.perf_counter(), time.process_time()
    model.score(texts)
    cold_s, cold_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    calls = model.encoder_calls
    t0 = time.perf_counter()
    for _ in range(5):
        model.score(texts)
        model.topic_intensity(texts)
    cached_s = (time.perf_counter() - t0) / 5
    assert model.encoder_calls == calls, "cached pass must not call the encoder"

    result = {
        "bench": "sentiment",
        "source": source,
        "n": len(texts),
        "device": str(model.encoder.device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "load_s": round(load_s, 2),
        "cold_headlines_per_s": round(len(texts) / cold_s, 1),
        # CPU seconds of all threads: what the machine would give with no other load
        "cold_headlines_per_cpu_s": round(len(texts) / cold_cpu_s, 1),
        "cached_headlines_per_s": round(len(texts) / cached_s, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if items:
        from app.config import Settings

        t0 = time.perf_counter()
        frame = score_news(items, Settings().universe, model)
        result["score_news_cached_items_per_s"] = round(len(items) / (time.perf_counter() - t0), 1)
        result["score_news_rows"] = len(frame)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
