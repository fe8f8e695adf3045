"""Headline rendering: topic, polarity, template, the asset's mention form and slot words.

The template tables are data in app/sim/templates.py; this module draws from them with the
caller's random stream, so the same stream gives the same headline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from app.config import Asset
from app.sim.templates import (
    BODIES,
    FILLERS,
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    TOPIC_WEIGHTS,
    TOPICS,
    Template,
)
from app.types import AssetClass

_CLASS_CODE = {AssetClass.CRYPTO: "C", AssetClass.STOCKS: "S", AssetClass.FOREX: "F"}
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Headline:
    title: str
    body: str
    topic: str
    sentiment: float


def mentions(asset: Asset) -> tuple[str, ...]:
    """Ways news names an asset: ticker, cashtag, name and aliases (BTC, $BTC, Bitcoin)."""
    ticker = asset.symbol
    if asset.asset_class is AssetClass.CRYPTO:
        for quote in ("USDT", "USDC", "USD"):
            if ticker.endswith(quote) and len(ticker) > len(quote):
                ticker = ticker[: -len(quote)]
                break
    if asset.asset_class is AssetClass.FOREX and len(ticker) == 6:
        pair = f"{ticker[:3]}/{ticker[3:]}"
        forms = [pair, asset.name or pair, *asset.aliases]
    else:
        forms = [ticker, f"${ticker}", asset.name or ticker, *asset.aliases]
    return tuple(dict.fromkeys(f for f in forms if f))


@cache
def templates_for(asset_class: AssetClass, polarity: int, topic: str) -> tuple[Template, ...]:
    table = {1: POSITIVE, -1: NEGATIVE, 0: NEUTRAL}[polarity]
    code = _CLASS_CODE[asset_class]
    return tuple(t for t in table.get(topic, ()) if code in t[0])


@cache
def topics_for(asset_class: AssetClass) -> tuple[str, ...]:
    """Topics with both positive and negative templates for this asset class."""
    return tuple(
        t for t in TOPICS if templates_for(asset_class, 1, t) and templates_for(asset_class, -1, t)
    )


@cache
def _topic_probabilities(asset_class: AssetClass) -> np.ndarray:
    weights = np.array(
        [TOPIC_WEIGHTS.get(asset_class, {}).get(t, 1.0) for t in topics_for(asset_class)]
    )
    return weights / weights.sum()


def _fill(text: str, name: str, rng: np.random.Generator) -> str:
    def repl(m: re.Match[str]) -> str:
        slot = m.group(1)
        if slot == "a":
            return name
        words = FILLERS[slot]
        return words[int(rng.integers(len(words)))]

    out = _SLOT.sub(repl, text)
    return out[0].upper() + out[1:]


def render_headline(
    asset: Asset, rng: np.random.Generator, neutral_share: float = 0.15
) -> Headline:
    """Draw one headline about ``asset``: topic, polarity, template, mention form, slots."""
    topics = topics_for(asset.asset_class)
    topic = topics[int(rng.choice(len(topics), p=_topic_probabilities(asset.asset_class)))]
    polarity = 0 if rng.random() < neutral_share else (1 if rng.random() < 0.5 else -1)
    choices = templates_for(asset.asset_class, polarity, topic)
    if not choices:  # no neutral template for this class/topic: fall back to a signed one
        polarity = 1 if rng.random() < 0.5 else -1
        choices = templates_for(asset.asset_class, polarity, topic)
    _, intensity, text = choices[int(rng.integers(len(choices)))]
    forms = mentions(asset)
    name = forms[int(rng.integers(len(forms)))]
    title = _fill(text, name, rng)
    bodies = BODIES[polarity]
    body = _fill(bodies[int(rng.integers(len(bodies)))], asset.name or name, rng)
    jitter = rng.uniform(0.85, 1.0)
    sentiment = round(max(-1.0, min(1.0, polarity * intensity * float(jitter))), 3)
    return Headline(title=title, body=body, topic=topic, sentiment=sentiment)
