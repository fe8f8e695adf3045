"""Headline templates for the simulated news feed, each with a known sentiment and topic.

A template is ``(classes, intensity, text)``: the asset classes it fits (``C`` crypto, ``S``
stocks, ``F`` forex), how strong its news is (0..1; the true sentiment is
``polarity * intensity``, slightly jittered) and the text with slots. ``{a}`` is the asset,
named by ticker, cashtag, name or alias so that a tagger has to find it; the other slots are
filled from small word lists. Forex sentiment is toward the quoted pair (EUR/USD up = positive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from app.config import Asset
from app.types import NEWS_TOPICS, AssetClass

TOPICS: tuple[str, ...] = NEWS_TOPICS

Template = tuple[str, float, str]

FILLERS: dict[str, tuple[str, ...]] = {
    "regulator": (
        "SEC",
        "CFTC",
        "the Justice Department",
        "EU regulators",
        "the FCA",
        "New York's financial regulator",
        "the Federal Trade Commission",
    ),
    "cb": ("the ECB", "the Fed", "the European Central Bank", "the Federal Reserve"),
    "official": (
        "Lagarde",
        "Powell",
        "an ECB board member",
        "a Fed governor",
        "the Bundesbank chief",
    ),
    "pct": ("3", "4", "5", "6", "7", "8", "9", "11", "12", "14", "15", "18"),
    "small_pct": ("0.3", "0.4", "0.5", "0.6", "0.8", "1.1"),
    "amount": (
        "$120 million",
        "$250 million",
        "$400 million",
        "$600 million",
        "$1.2 billion",
        "$2 billion",
        "$3.5 billion",
    ),
    "partner": (
        "Visa",
        "Mastercard",
        "Google",
        "Amazon",
        "Nvidia",
        "BlackRock",
        "Fidelity",
        "JPMorgan",
        "PayPal",
        "Samsung",
        "Stripe",
        "Deutsche Bank",
    ),
    "product": (
        "a new flagship device",
        "its AI assistant",
        "a subscription bundle",
        "a next-generation chip",
        "an enterprise cloud suite",
        "a budget model",
        "a payments app",
        "its mixed-reality headset",
    ),
    "upgrade": (
        "a major network upgrade",
        "a scaling upgrade",
        "a new staking feature",
        "a long-awaited protocol upgrade",
        "a faster settlement layer",
    ),
    "venue": (
        "a major exchange",
        "a top crypto lender",
        "a DeFi protocol",
        "a cross-chain bridge",
        "a popular wallet provider",
    ),
    "country": ("Japan", "the UK", "South Korea", "Brazil", "Canada", "Singapore", "India"),
    "data": ("inflation", "PMI", "GDP", "jobs", "retail sales", "industrial output"),
    "quarter": ("first-quarter", "second-quarter", "third-quarter", "fourth-quarter"),
    "analyst": (
        "Goldman Sachs",
        "Morgan Stanley",
        "Bernstein",
        "UBS",
        "Barclays",
        "Citi",
        "Jefferies",
    ),
}

POSITIVE: dict[str, tuple[Template, ...]] = {
    "regulatory_risk": (
        ("C", 0.8, "{regulator} drops its case against {a}, removing a key overhang"),
        ("C", 0.9, "SEC approves spot {a} ETFs in landmark decision"),
        ("C", 0.6, "{country} recognizes {a} as legal payment method"),
        ("C", 0.5, "Court rules {a} is not a security, handing the industry a win"),
        ("CS", 0.5, "{regulator} closes probe into {a} without charges"),
        ("S", 0.6, "{a} wins antitrust appeal in EU court"),
        ("S", 0.4, "{regulator} clears {a} deal after lengthy review"),
        ("C", 0.4, "{country} lawmakers pass clear rules for {a} trading"),
        ("S", 0.5, "{a} settles patent dispute on favorable terms"),
        ("CS", 0.3, "Lawmakers signal lighter rules, a relief for {a}"),
        ("F", 0.4, "EU agrees on budget rules, easing pressure on the {a}"),
        (
            "F",
            0.3,
            "US Treasury drops the eurozone from its currency watch list, a boost for the {a}",
        ),
    ),
    "product_launch": (
        ("S", 0.7, "{a} shares jump after record sales of {product}"),
        ("S", 0.5, "{a} unveils {product} to strong early reviews"),
        ("S", 0.6, "Preorders for {a}'s {product} beat expectations"),
        ("S", 0.4, "{a} launches {product}, analysts see upside"),
        ("C", 0.6, "{a} completes {upgrade}, fees drop sharply"),
        ("C", 0.5, "Developers ship {upgrade} for {a} ahead of schedule"),
        ("C", 0.4, "{a} network activity hits record after {upgrade}"),
        ("CS", 0.3, "Early demand for {a}'s new offering looks strong, survey shows"),
        ("S", 0.8, "{a} soars as {product} sells out within hours"),
        ("C", 0.7, "{a} rallies as {upgrade} goes live without a hitch"),
    ),
    "earnings": (
        ("S", 0.8, "{a} beats {quarter} earnings estimates and raises guidance"),
        ("S", 0.7, "{a} posts record {quarter} revenue, shares climb"),
        ("S", 0.5, "{a} tops profit forecasts on strong services growth"),
        ("S", 0.6, "{analyst} upgrades {a} to buy, citing margin gains"),
        ("S", 0.4, "{a} lifts dividend by {pct}% and expands buyback"),
        ("S", 0.9, "{a} smashes expectations as {quarter} profit jumps {pct}%"),
        ("S", 0.3, "{analyst} raises price target on {a}"),
        ("C", 0.5, "Miners report record quarterly revenue as {a} fees surge"),
        ("C", 0.4, "{analyst} raises year-end forecast for {a}"),
        ("S", 0.5, "{a} margins widen more than expected in {quarter} results"),
    ),
    "security_breach": (
        ("C", 0.5, "Stolen {a} recovered after {venue} hack, users made whole"),
        ("C", 0.4, "{venue} passes independent audit, easing {a} security fears"),
        ("S", 0.3, "{a} patches flaw before any customer data was exposed"),
        ("CS", 0.4, "Investigators trace and freeze funds taken in {a} exploit"),
        ("C", 0.3, "{a} developers fix critical bug found by white-hat researchers"),
        ("S", 0.4, "{a} wins praise for swift response to attempted cyberattack"),
        ("C", 0.5, "Hacker returns {amount} in {a} to {venue}"),
        ("S", 0.3, "{a} expands bug bounty after security review finds no breach"),
    ),
    "macro_policy": (
        ("F", 0.7, "{cb} signals further rate hikes, lifting the {a}"),
        ("F", 0.6, "Eurozone {data} data beats forecasts, {a} climbs"),
        ("F", 0.5, "{official} says inflation fight is not over; {a} firms"),
        ("F", 0.6, "Weak US jobs report drags the dollar lower, {a} rises"),
        ("F", 0.4, "Fed minutes point to earlier cuts, dollar slips against the {a}"),
        ("F", 0.5, "German {data} surprises to the upside, {a} gains"),
        ("F", 0.3, "Traders pare bets on ECB cuts, supporting the {a}"),
        ("F", 0.8, "{a} jumps as ECB delivers surprise hike"),
        ("F", 0.5, "Eurozone growth revised up to {small_pct}%, {a} extends gains"),
        ("F", 0.6, "{a} rallies after {official} rules out early rate cuts"),
        ("F", 0.4, "US {data} data disappoints, dollar weakens against the {a}"),
        ("F", 0.5, "{a} hits one-month high as bond spreads narrow"),
        ("F", 0.3, "Hedge funds turn bullish on the {a}, positioning data show"),
        ("F", 0.6, "Dollar slides after Fed official backs a cut; {a} up {small_pct}%"),
        ("F", 0.4, "French and Italian {data} figures beat estimates, {a} edges up"),
        ("F", 0.7, "{a} surges as euro-zone inflation stays hot, cementing ECB hike bets"),
        ("CS", 0.6, "Fed signals rate cuts ahead, boosting {a}"),
        ("CS", 0.5, "Cooling US inflation lifts risk appetite; {a} advances"),
        ("CS", 0.4, "Treasury yields fall after soft {data} data, {a} gains"),
        ("C", 0.5, "Weaker dollar sends investors into {a}"),
        ("S", 0.4, "{a} rises as soft {data} print revives rate-cut hopes"),
    ),
    "partnership_ma": (
        ("S", 0.7, "{a} agrees to acquire rival in {amount} deal"),
        ("S", 0.6, "{a} signs multiyear partnership with {partner}"),
        ("S", 0.5, "{partner} picks {a} as key supplier for new lineup"),
        ("S", 0.8, "{a} surges on reports of takeover interest"),
        ("C", 0.7, "{partner} to accept {a} for payments"),
        ("C", 0.6, "{partner} adds {a} exposure to flagship fund"),
        ("C", 0.5, "{partner} launches {a} custody for institutional clients"),
        ("CS", 0.4, "{a} joins forces with {partner} on new platform"),
        ("C", 0.3, "{partner} pilots {a} settlement with banking partners"),
        ("S", 0.4, "{a} expands alliance with {partner} into new markets"),
        ("F", 0.3, "Large euro-zone merger inflows expected to support the {a}"),
    ),
}

NEGATIVE: dict[str, tuple[Template, ...]] = {
    "regulatory_risk": (
        ("C", 0.8, "SEC sues major exchange over unregistered securities; {a} slides"),
        ("C", 0.7, "{country} bans {a} trading and mining"),
        ("C", 0.6, "{regulator} opens probe into {a} market manipulation"),
        ("CS", 0.5, "{regulator} proposes strict new rules that could hit {a}"),
        ("S", 0.7, "{regulator} files antitrust lawsuit against {a}"),
        ("S", 0.6, "EU fines {a} {amount} over competition breaches"),
        ("S", 0.5, "{a} faces new investigation into app store practices"),
        ("C", 0.5, "Lawmakers push tax crackdown on {a} holders"),
        ("C", 0.9, "{a} plunges as {regulator} moves to halt trading on key platforms"),
        ("S", 0.4, "{regulator} widens inquiry into {a} accounting"),
        ("CS", 0.3, "Regulatory uncertainty weighs on {a}"),
        ("F", 0.4, "EU budget row deepens, weighing on the {a}"),
    ),
    "product_launch": (
        ("S", 0.6, "{a} delays {product} amid production problems"),
        ("S", 0.5, "Reviews of {a}'s {product} disappoint; shares dip"),
        ("S", 0.7, "{a} recalls {product} after safety complaints"),
        ("S", 0.4, "Weak demand for {product} prompts {a} to cut orders"),
        ("C", 0.6, "{a} postpones {upgrade} after testnet failures"),
        ("C", 0.5, "{a} network halts for hours after botched {upgrade}"),
        ("C", 0.4, "Developers warn {upgrade} for {a} is months behind"),
        ("CS", 0.3, "Launch of {a}'s new offering draws lukewarm response"),
        ("S", 0.8, "{a} tumbles as {product} is pulled from shelves"),
        ("C", 0.7, "{a} drops as {upgrade} triggers chain split fears"),
    ),
    "earnings": (
        ("S", 0.8, "{a} misses {quarter} estimates and cuts outlook"),
        ("S", 0.7, "{a} shares fall as {quarter} revenue disappoints"),
        ("S", 0.5, "{a} warns of margin pressure as costs rise"),
        ("S", 0.6, "{analyst} downgrades {a} to sell on slowing growth"),
        ("S", 0.4, "{a} suspends buyback to preserve cash"),
        ("S", 0.9, "{a} plunges after profit drops {pct}% in {quarter} results"),
        ("S", 0.3, "{analyst} cuts price target on {a}"),
        ("C", 0.5, "Miners report losses as {a} fees collapse"),
        ("C", 0.4, "{analyst} slashes year-end forecast for {a}"),
        ("S", 0.5, "{a} guidance falls short as demand softens"),
    ),
    "security_breach": (
        ("C", 0.9, "Hackers drain {amount} in {a} from {venue}"),
        ("C", 0.7, "{venue} suspends {a} withdrawals after security breach"),
        ("C", 0.6, "Critical vulnerability found in {a} client software"),
        ("S", 0.6, "{a} discloses data breach affecting millions of users"),
        ("S", 0.5, "Ransomware attack disrupts {a} operations"),
        ("CS", 0.4, "Security researchers warn of flaw exposing {a} users"),
        ("C", 0.5, "{a} exploit on {venue} rattles investors"),
        ("S", 0.7, "{a} shares sink after hackers steal customer records"),
        ("C", 0.8, "{a} tumbles as {venue} confirms {amount} theft"),
    ),
    "macro_policy": (
        ("F", 0.7, "{cb} signals pause in hikes, {a} falls"),
        ("F", 0.6, "Eurozone {data} data misses forecasts, {a} slides"),
        ("F", 0.5, "{official} flags growth risks; {a} weakens"),
        ("F", 0.6, "Strong US jobs report lifts the dollar, {a} drops"),
        ("F", 0.4, "Hawkish Fed minutes push dollar higher against the {a}"),
        ("F", 0.5, "German {data} disappoints, {a} retreats"),
        ("F", 0.3, "Traders add to bets on ECB cuts, weighing on the {a}"),
        ("F", 0.8, "{a} sinks as ECB surprises with a rate cut"),
        ("F", 0.5, "Eurozone growth revised down to {small_pct}%, {a} extends losses"),
        ("F", 0.6, "{a} tumbles after {official} opens the door to rate cuts"),
        ("F", 0.4, "Upbeat US {data} data sends the dollar higher against the {a}"),
        ("F", 0.5, "{a} hits one-month low as bond spreads widen"),
        ("F", 0.3, "Hedge funds turn bearish on the {a}, positioning data show"),
        ("F", 0.6, "Dollar jumps after Fed official rules out cuts; {a} down {small_pct}%"),
        ("F", 0.4, "French and Italian {data} figures miss estimates, {a} edges down"),
        ("F", 0.7, "{a} slumps as euro-zone inflation cools faster than expected"),
        ("CS", 0.6, "Fed signals higher for longer, hitting {a}"),
        ("CS", 0.5, "Hot US inflation print sours risk mood; {a} declines"),
        ("CS", 0.4, "Treasury yields jump after strong {data} data, {a} falls"),
        ("C", 0.5, "Stronger dollar pulls investors out of {a}"),
        ("S", 0.4, "{a} slips as hot {data} print dims rate-cut hopes"),
    ),
    "partnership_ma": (
        ("S", 0.6, "{a} deal to acquire rival collapses"),
        ("S", 0.5, "{partner} ends partnership with {a}"),
        ("S", 0.6, "{partner} drops {a} as supplier for new lineup"),
        ("S", 0.7, "Regulators block {a} takeover bid"),
        ("C", 0.7, "{partner} halts {a} payments citing volatility"),
        ("C", 0.6, "{partner} pulls {a} exposure from flagship fund"),
        ("C", 0.5, "{partner} shelves {a} custody plans"),
        ("CS", 0.4, "{a} partnership with {partner} falls apart"),
        ("S", 0.8, "{a} slumps as {partner} walks away from merger talks"),
        ("C", 0.3, "{partner} pauses {a} settlement pilot"),
        ("F", 0.3, "Euro-zone merger outflows expected to weigh on the {a}"),
    ),
}

NEUTRAL: dict[str, tuple[Template, ...]] = {
    "regulatory_risk": (
        ("CS", 0.0, "{regulator} to hold hearing on {a} rules next month"),
        ("C", 0.0, "{country} regulators publish consultation on {a} custody"),
    ),
    "product_launch": (
        ("S", 0.0, "{a} schedules product event for next week"),
        ("C", 0.0, "{a} developers set date for {upgrade} vote"),
    ),
    "earnings": (
        ("S", 0.0, "{a} to report {quarter} results after the bell on Thursday"),
        ("S", 0.0, "What to expect from {a}'s {quarter} earnings"),
    ),
    "security_breach": (
        ("C", 0.0, "{venue} schedules routine maintenance for {a} wallets"),
        ("S", 0.0, "{a} publishes annual security report"),
    ),
    "macro_policy": (
        ("F", 0.0, "{cb} meeting preview: what it means for the {a}"),
        ("F", 0.0, "{a} steady ahead of {data} release"),
        ("F", 0.0, "{official} to speak at a conference on Thursday; {a} traders watch"),
        ("F", 0.0, "{a} options volumes pick up before the {data} report"),
        ("CS", 0.0, "Markets await Fed decision; {a} in focus"),
    ),
    "partnership_ma": (
        ("S", 0.0, "{a} confirms talks with {partner}, no decision yet"),
        ("C", 0.0, "{partner} says it is studying {a} products"),
    ),
}

BODIES: dict[int, tuple[str, ...]] = {
    1: (
        "Analysts said the news should support {a} in the near term.",
        "Traders called the development a clear positive for {a}.",
        "Investors welcomed the announcement, according to people familiar with the matter.",
        "The move was seen as a vote of confidence in {a}.",
        "Market participants said sentiment toward {a} had improved.",
    ),
    -1: (
        "Analysts warned the news could weigh on {a} in the near term.",
        "Traders called the development a setback for {a}.",
        "Investors reacted nervously, according to people familiar with the matter.",
        "The episode adds to a list of worries around {a}.",
        "Market participants said sentiment toward {a} had soured.",
    ),
    0: (
        "Details were not disclosed.",
        "The company and officials declined to comment further.",
        "More information is expected in the coming days.",
    ),
}

# Forex news is mostly about central banks and data; other classes spread over all topics.
TOPIC_WEIGHTS: dict[AssetClass, dict[str, float]] = {AssetClass.FOREX: {"macro_policy": 5.0}}

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
