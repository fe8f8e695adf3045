"""Text written for the zero-shot heads: sentiment prototypes and topic descriptions.

The zero-shot sentiment head embeds these phrases once and compares every headline with the
class centroids, so it works with no labelled data at all. Topic intensity compares a headline
with several descriptive phrases per topic. Phrases are short, headline-like and varied in
asset class (stocks, crypto, forex) so that no single vocabulary dominates a centroid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SENTIMENT_PROTOTYPES: Mapping[str, tuple[str, ...]] = {
    "positive": (
        "Company reports record quarterly profit, beating analyst estimates",
        "Net sales rose sharply compared with the same period a year earlier",
        "Operating profit increased to EUR 25 million from EUR 18 million",
        "Shares surge after strong earnings and raised full-year guidance",
        "The company raised its dividend and announced a share buyback",
        "Revenue growth accelerated and margins improved",
        "Bitcoin rallies to a new all-time high as institutional demand grows",
        "Ethereum price jumps after a successful network upgrade",
        "Stock climbs after analysts upgrade it to buy",
        "The firm won a large new contract worth millions",
        "Order intake grew strongly and the backlog is at a record level",
        "Sales volumes increased and the outlook was upgraded",
        "Investors cheer the better-than-expected results",
        "Crypto market rebounds strongly with broad gains",
        "Profit before taxes more than doubled",
        "The euro strengthens as economic data beats expectations",
        "Demand for the new product is exceeding expectations",
        "The company returned to profit after a loss last year",
        "Earnings per share rose, ahead of forecasts",
        "Strong inflows lift the fund to a record size",
        "Approval of the ETF sends prices sharply higher",
        "The company expects sales growth to continue next year",
        "Cash flow from operations improved significantly",
        "Market share gains drive higher revenue",
        "Shares hit a 52-week high on upbeat guidance",
        "Cost savings boosted profitability",
        "The acquisition is expected to be accretive to earnings",
        "Bullish momentum builds as buyers step in",
    ),
    "negative": (
        "Company swings to a net loss as sales fall",
        "Operating profit decreased to EUR 5 million from EUR 12 million",
        "Shares plunge after the company cuts its profit forecast",
        "The firm warned that revenue will decline this year",
        "Net sales dropped compared with the same period a year earlier",
        "Bitcoin crashes below key support as sellers dump coins",
        "Crypto exchange hacked, millions in tokens stolen",
        "Regulators sue the company over fraud allegations",
        "Stock falls after analysts downgrade it to sell",
        "The company will cut hundreds of jobs to reduce costs",
        "Earnings missed expectations and margins shrank",
        "The firm filed for bankruptcy protection",
        "Investors flee as losses mount",
        "Pre-tax loss widened from the previous year",
        "The euro weakens as economic data disappoints",
        "Demand slumped and orders were cancelled",
        "The company issued a profit warning",
        "Shares hit a 52-week low amid recession fears",
        "Massive liquidations wipe out leveraged traders",
        "Sales volumes declined and the outlook was lowered",
        "The dividend was suspended after weak results",
        "Earnings per share fell short of forecasts",
        "Outflows accelerate as confidence collapses",
        "Token price tumbles after exploit drains protocol",
        "The merger talks collapsed, sending shares lower",
        "Rising costs squeezed profitability",
        "Bearish pressure intensifies as prices slide",
        "The company lost a major customer contract",
    ),
    "neutral": (
        "The company will publish its interim report on Thursday",
        "The annual general meeting will be held in Helsinki",
        "The firm is headquartered in Finland and employs 500 people",
        "The company operates in the paper and packaging industry",
        "The board appointed a new chief financial officer",
        "Trading volume was in line with the monthly average",
        "Bitcoin trades sideways as markets await the data",
        "The exchange lists a new trading pair",
        "The report covers the period from January to March",
        "The company's products are sold in over 30 countries",
        "The central bank meeting is scheduled for next week",
        "The stock was unchanged in early trading",
        "The firm provides services to the telecommunications sector",
        "The agreement includes delivery of equipment and installation",
        "Details of the transaction were not disclosed",
        "The company will hold a conference call for analysts",
        "Ethereum developers discuss the timeline of the next upgrade",
        "The euro was little changed against the dollar",
        "The shares will be listed on the main market",
        "The plant is located in the southern part of the country",
        "The company has around 2,000 shareholders",
        "The deal is subject to regulatory approval",
        "Analysts expect the results to be released in the morning",
        "The project is scheduled to be completed next year",
        "The company changed its name last year",
        "Prices were mixed across the crypto market",
        "The index will be rebalanced at the end of the quarter",
        "The firm announced the date of its capital markets day",
    ),
}

TOPIC_DESCRIPTIONS: Mapping[str, tuple[str, ...]] = {
    "regulatory_risk": (
        "Regulators launch an investigation into the company",
        "The SEC sues the exchange for securities law violations",
        "Government proposes a ban on cryptocurrency trading",
        "Lawmakers push for stricter rules and compliance requirements",
        "The company faces a fine from the antitrust authority",
        "A court ruling threatens the firm's business license",
        "New regulation cracks down on the industry",
    ),
    "product_launch": (
        "The company unveils a new product",
        "Launch of the new smartphone model",
        "The firm introduces a new service for customers",
        "A new version of the platform goes live",
        "The network rolls out a major upgrade",
        "The company releases its latest device",
        "Startup debuts an app for traders",
        "Automaker unveils a new electric car model",
        "The company announces a new product line available next month",
    ),
    "earnings": (
        "Quarterly earnings results",
        "The company reports revenue and net profit for the quarter",
        "Earnings per share beat or missed analyst estimates",
        "Full-year guidance and financial outlook",
        "Operating profit and net sales for the period",
        "Interim report shows sales and margins",
        "The firm posts annual results",
    ),
    "security_breach": (
        "Hackers breach the exchange and steal funds",
        "A data breach exposes customer information",
        "An exploit drains millions from the protocol",
        "Cyberattack hits the company's systems",
        "Wallet compromised in a security incident",
        "Ransomware attack disrupts operations",
        "Vulnerability in the smart contract was exploited",
    ),
    "macro_policy": (
        "The Federal Reserve raises interest rates",
        "The central bank keeps rates unchanged",
        "Inflation data comes in hotter than expected",
        "Monetary policy tightening weighs on markets",
        "The ECB signals a change in its policy stance",
        "Jobs report and GDP growth figures",
        "Government announces fiscal stimulus",
    ),
    "partnership_ma": (
        "The company agrees to acquire a rival",
        "Merger talks between the two firms",
        "The companies announce a strategic partnership",
        "Takeover bid for the company",
        "The firm signs a collaboration agreement",
        "Joint venture formed to develop the technology",
        "Acquisition deal valued at billions",
    ),
}


def topic_phrases(name: str, extra: Mapping[str, Sequence[str]] | None = None) -> tuple[str, ...]:
    """Descriptive phrases for a topic: ``extra`` first, then the built-ins.

    A topic configured by name only (no phrases anywhere) is described by its own name with
    underscores as spaces, so a new topic in the settings works without code changes.
    """
    if extra and name in extra and extra[name]:
        return tuple(extra[name])
    if name in TOPIC_DESCRIPTIONS:
        return TOPIC_DESCRIPTIONS[name]
    return (name.replace("_", " "),)
