"""Typed settings: one place for every default.

Sources, highest priority first: keyword arguments, ``APP_*`` environment variables
(nested with ``__``, e.g. ``APP_RISK__CONFIDENCE_GATE=0.8``), a TOML file (``APP_CONFIG`` or
the ``config_file`` argument of :func:`load_settings`), then the defaults below, which run
offline. Unknown keys are an error everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from app.types import NEWS_TOPICS, AssetClass

SourceName = Literal["csv", "sim", "ccxt", "ib", "yfinance"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Asset(_Section):
    """One tradable symbol, where its prices come from, and the names news uses for it."""

    symbol: str
    asset_class: AssetClass
    source: SourceName = "sim"
    name: str = ""
    aliases: tuple[str, ...] = ()


class RiskSettings(_Section):
    """Limits of the deterministic risk engine (DESIGN.md, Risk rules)."""

    confidence_gate: float = Field(0.70, ge=0.0, le=1.0)
    max_daily_drawdown: float = Field(0.02, gt=0.0, lt=1.0)
    stop_mode: Literal["atr", "pct"] = "atr"
    stop_loss_atr: float = Field(1.5, gt=0.0)
    take_profit_atr: float = Field(3.0, gt=0.0)
    stop_loss_pct: float = Field(0.01, gt=0.0, lt=1.0)
    take_profit_pct: float = Field(0.02, gt=0.0)
    risk_per_trade: float = Field(0.005, gt=0.0, lt=1.0)
    size_floor: float = Field(0.25, ge=0.0, le=1.0)  # size scale at the gate; 1.0 at confidence 1
    max_position_notional: float = Field(0.25, gt=0.0)  # fraction of equity
    max_gross_exposure: float = Field(1.0, gt=0.0)  # fraction of equity
    max_open_positions: int = Field(5, ge=1)
    max_orders_per_minute: int = Field(30, ge=1)
    price_band: float = Field(0.05, gt=0.0)  # max |order ref price / last - 1|


class CostSettings(_Section):
    """Fees and slippage per asset class, in basis points of notional."""

    fee_bps: dict[AssetClass, float] = Field(
        default_factory=lambda: {
            AssetClass.CRYPTO: 10.0,
            AssetClass.STOCKS: 1.0,
            AssetClass.FOREX: 0.5,
        }
    )
    slippage_bps: float = Field(2.0, ge=0.0)
    # "bps": slippage_bps of the price; "atr": slippage_atr x ATR(14) (app/broker/fill_model.py)
    slippage_mode: Literal["bps", "atr"] = "bps"
    slippage_atr: float = Field(0.05, ge=0.0)


class LabelSettings(_Section):
    """Label definition (DESIGN.md, Labels): horizon T and threshold theta."""

    horizon: int = Field(1, ge=1)
    theta_bps: float = Field(2.0, ge=0.0)
    theta_k: float = Field(0.25, ge=0.0)
    sigma_window: int = Field(288, ge=2)


class ModelSettings(_Section):
    kind: Literal["transformer", "lstm"] = "transformer"
    lookback: int = Field(60, ge=2)
    d_model: int = Field(64, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    device: str = "auto"  # "auto" = CUDA when present, else CPU
    # torch intra-op threads of a live process (worker, Model replicas); 0 = torch's default
    inference_threads: int = Field(1, ge=0)


class SentimentSettings(_Section):
    """Text model: a local path or a Hugging Face id; empty = the packaged MiniLM."""

    model: str = ""
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(256, ge=8)  # tokens per text; longer bodies are truncated
    device: str = "auto"  # "auto" = CUDA when present, else CPU
    cache_path: str = ""  # optional SQLite file that keeps encodings across runs
    topics: tuple[str, ...] = NEWS_TOPICS
    # more models (local folders or cached ids) whose class probabilities are averaged with
    # ``model``'s, e.g. a fine-tuned classifier beside the MiniLM head (docs/SENTIMENT.md)
    ensemble: tuple[str, ...] = ()


class CcxtSettings(_Section):
    exchange: str = "binance"
    timeout_ms: int = Field(10_000, ge=100)
    max_retries: int = Field(5, ge=0)
    # ccxt's request pacing (``rateLimit``, ms between calls); None: the exchange's published
    # default (Binance 50 ms). Lower only for an account with higher limits or a local venue.
    rate_limit_ms: float | None = Field(None, gt=0.0)

    def client_options(self) -> dict[str, object]:
        """The ccxt constructor options these settings set (pacing on, timeout, rate)."""
        options: dict[str, object] = {"enableRateLimit": True, "timeout": self.timeout_ms}
        if self.rate_limit_ms is not None:
            options["rateLimit"] = self.rate_limit_ms
        return options


class ExecutionSettings(_Section):
    """The execution engine's retry and reconciliation policy (docs/EXECUTION.md)."""

    max_retries: int = Field(4, ge=0)  # network-family retries per venue call
    backoff_s: float = Field(0.5, ge=0.0)  # first backoff; doubles per retry
    max_backoff_s: float = Field(10.0, ge=0.0)
    reconcile_every_min: float = Field(5.0, gt=0.0)
    position_tolerance: float = Field(1e-9, ge=0.0)  # relative qty difference still "equal"
    initial_cash: float = Field(100_000.0, gt=0.0)  # the paper account's starting cash
    testnet: bool = False  # ccxt sandbox mode (Binance spot testnet)
    venue_url: str = ""  # replaces scheme+host of every endpoint the ccxt client calls
    quote_currency: str = "USDT"  # spot: symbol = base + quote (BTCUSDT)


class IBSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(7497, ge=1, le=65535)  # 7497 = TWS paper
    client_id: int = 17


class FlowSettings(_Section):
    """Where the live worker polls institutional flow for stocks (docs/SIDE_SOURCES.md)."""

    finra_base_url: str = "https://cdn.finra.org"  # the daily short-volume files
    ats_file: str = ""  # FINRA's weekly ATS summary, as a file a user refreshes ("": none)
    # IB tick-by-tick prints (trade_print / block_trade): a block is a print of at least
    # block_floor shares above the block_percentile of the ticker's previous 1000 prints
    ib_prints: bool = True  # False: no tick-by-tick subscriptions (IB allows only a few)
    block_percentile: float = Field(99.0, gt=0.0, lt=100.0)
    block_floor: float = Field(10_000.0, ge=0.0)  # shares (the classic block: 10,000)
    prints_backfill_minutes: float = Field(60.0, ge=0.0)  # TRADES ticks read before the start
    prints_backfill_pages: int = Field(5, ge=0)  # of 1000 ticks each, per ticker


class LiveNewsSettings(_Section):
    """Headlines and Fear & Greed a live venue feed polls beside its bars (docs/LIVE.md)."""

    rss_urls: tuple[str, ...] = ()  # RSS / Atom feeds ((): no headline poller)
    news_every_minutes: float = Field(5.0, gt=0.0)
    fear_greed: bool = False  # poll the asset class's Fear & Greed (alternative.me / CNN)
    fear_greed_every_minutes: float = Field(60.0, gt=0.0)
    alternative_me_base_url: str = "https://api.alternative.me"  # crypto
    cnn_base_url: str = "https://production.dataviz.cnn.io"  # stocks


class ApiSettings(_Section):
    """The signal API (docs/LIVE.md). Keys come from the environment as JSON lists:
    ``APP_API__KEYS`` (operate role: reads and commands), ``APP_API__READ_KEYS`` (reads only).
    Their strength and roles are checked by ``app.serve.auth.check_keys`` when the API starts,
    with errors that never show a key (a validator here would echo its input)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    keys: tuple[SecretStr, ...] = ()
    read_keys: tuple[SecretStr, ...] = ()
    cors_origins: tuple[str, ...] = ()
    signal_stale_bars: int = Field(2, ge=1)  # a signal older than this many bars is stale
    # a feed silent longer than this (seconds since its last bar closed) is stale
    feed_stale_s: dict[AssetClass, float] = Field(
        default_factory=lambda: {c: 900.0 for c in AssetClass}
    )
    max_page: int = Field(1000, ge=1)  # most rows one list request returns
    sse_queue_size: int = Field(256, ge=1)  # events buffered per subscriber (oldest dropped)
    sse_max_subscribers: int = Field(64, ge=1)
    sse_ping_s: float = Field(15.0, gt=0.0)

    @field_validator("feed_stale_s")
    @classmethod
    def _positive_limits(cls, limits: dict[AssetClass, float]) -> dict[AssetClass, float]:
        for asset_class, seconds in limits.items():
            if not seconds > 0:
                raise ValueError(f"feed_stale_s[{asset_class.value}]={seconds!r}: must be > 0")
        return {**{c: 900.0 for c in AssetClass}, **limits}


class RetrainSettings(_Section):
    """``live --retrain-every``: the walk-forward a retrain runs and the rule that promotes its
    candidate (app/pipeline/retrain.py, docs/LIVE.md "Retraining"). ``None``: the walk-forward
    preset's value (``quick``: the --quick preset, else the standard one)."""

    quick: bool = False
    folds: int | None = Field(None, ge=2)
    max_epochs: int | None = Field(None, ge=0)
    max_windows: int | None = Field(None, ge=1)  # training windows per epoch
    lookback: int | None = Field(None, ge=2)  # None: the served version's, so both are scored
    baselines: tuple[str, ...] | None = None  # the report's; None: the walk-forward's
    seed: int = 0
    compare_folds: int = Field(1, ge=1)  # the most recent folds both models are scored on
    metric: Literal["dacc", "accuracy", "selective_dacc"] = "dacc"
    min_gain: float = Field(0.0, ge=0.0)  # the candidate must beat the served figure by more


class UiSettings(_Section):
    """The Gradio control panel (docs/PANEL.md). From the environment: ``APP_UI__API_KEY``
    (the key it presents to the signal API), ``APP_UI__USER`` and ``APP_UI__PASSWORD`` (its own
    login; the panel asks for it whenever a password is set, and refuses to listen on a
    non-loopback address without one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    api_url: str = "http://127.0.0.1:8000"
    api_key: SecretStr | None = None
    user: str = "operator"
    password: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    refresh_s: float = Field(5.0, gt=0.0)  # how often the live tables and charts refresh
    timeout_s: float = Field(5.0, gt=0.0)  # per API request
    chart_bars: int = Field(300, ge=10, le=1000)  # equity points / candles a chart shows


class Settings(BaseSettings):
    """Root settings. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="APP_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    universe: tuple[Asset, ...] = (
        Asset(symbol="BTCUSDT", asset_class=AssetClass.CRYPTO, name="Bitcoin", aliases=("BTC",)),
        Asset(symbol="ETHUSDT", asset_class=AssetClass.CRYPTO, name="Ethereum", aliases=("ETH",)),
        Asset(symbol="AAPL", asset_class=AssetClass.STOCKS, name="Apple"),
        Asset(symbol="EURUSD", asset_class=AssetClass.FOREX, name="Euro"),
    )
    store_url: str = "duckdb:///runs/store.db"
    data_dir: Path = Path("runs")
    registry_dir: Path = Path("runs/registry")
    shared_data_dir: Path = Path("../shared/data")
    risk: RiskSettings = RiskSettings()
    costs: CostSettings = CostSettings()
    labels: LabelSettings = LabelSettings()
    model: ModelSettings = ModelSettings()
    sentiment: SentimentSettings = SentimentSettings()
    ccxt: CcxtSettings = CcxtSettings()
    ib: IBSettings = IBSettings()
    flow: FlowSettings = FlowSettings()
    live_news: LiveNewsSettings = LiveNewsSettings()
    api: ApiSettings = ApiSettings()
    ui: UiSettings = UiSettings()
    execution: ExecutionSettings = ExecutionSettings()
    retrain: RetrainSettings = RetrainSettings()
    live_trading: bool = False  # paper by default; live needs an explicit flag

    @field_validator("store_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("duckdb://", "questdb://", "http://", "https://")):
            raise ValueError(f"store_url={value!r}: expected duckdb://... or questdb://...")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("APP_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    def asset(self, symbol: str) -> Asset:
        for a in self.universe:
            if a.symbol == symbol:
                return a
        raise KeyError(f"symbol={symbol!r} is not in the configured universe")


def load_settings(config_file: str | Path | None = None, **overrides: object) -> Settings:
    """Load settings from defaults, an optional TOML file, ``APP_*`` variables and overrides."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        previous = os.environ.get("APP_CONFIG")
        os.environ["APP_CONFIG"] = str(path)
        try:
            return Settings(**overrides)  # type: ignore[arg-type]
        finally:
            if previous is None:
                os.environ.pop("APP_CONFIG", None)
            else:
                os.environ["APP_CONFIG"] = previous
    return Settings(**overrides)  # type: ignore[arg-type]
