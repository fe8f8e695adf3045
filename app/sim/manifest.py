"""``SimManifest``: the simulation folder's ``manifest.json``, parsed once into typed fields.

Everything that reads a simulation folder (the folder loader, the backtest's asset classes,
walk-forward's oracle, ingest-side) goes through :meth:`SimManifest.load`; a missing or
malformed field is an ``InputError`` naming the file and the field. :meth:`SimManifest.to_dict`
gives back exactly the JSON the simulator wrote, so load -> save reproduces the bytes.
Numbers keep the JSON type they were written with (an ``int`` stays an ``int``) for the same
reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from app.config import Asset, LabelSettings
from app.errors import InputError
from app.sim.config import PlantedEffects, SimConfig
from app.types import AssetClass

MANIFEST_FILE = "manifest.json"
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# The name manifests have carried since the first simulator; kept so a seed gives the same bytes.
GENERATOR = "app.sources.simulator"
ORACLE_NOTE = "p_* = oracle_probabilities(mu, sigma, theta, df=oracle.df)"
_EFFECT_NUMBERS = tuple(f.name for f in fields(PlantedEffects))
_EFFECT_TEXTS = tuple(k for k in PlantedEffects().describe() if k not in _EFFECT_NUMBERS)


@dataclass(frozen=True, slots=True)
class OracleInfo:
    """How the oracle file's ``mu``/``sigma`` become probabilities: the Student-t ``df`` of
    the forward return (exact when the label horizon is 1, kurtosis-matched otherwise)."""

    df: float
    exact: bool
    note: str = ORACLE_NOTE


@dataclass(frozen=True, slots=True)
class SimCounts:
    bars: dict[str, int]  # symbol -> bars written
    news: int
    macro: int
    flow: int


@dataclass(frozen=True, slots=True)
class SimManifest:
    """What generated a simulation folder and what it holds (docs/SIMULATOR.md).

    ``assets`` carries each symbol's asset class, name and aliases (the JSON's ``symbols``
    and ``assets`` fields). Mapping fields are read-only by convention.
    """

    generator: str
    seed: int
    days: int
    start: datetime
    assets: dict[str, Asset]
    labels: LabelSettings
    news_per_day: float
    t_df: float
    regime_levels: tuple[float, ...]
    regime_stay: float
    oracle: OracleInfo
    planted_effects: PlantedEffects
    counts: SimCounts
    oracle_dacc: dict[str, float]

    @property
    def horizon(self) -> int:
        return self.labels.horizon

    @property
    def asset_classes(self) -> dict[str, AssetClass]:
        return {s: a.asset_class for s, a in self.assets.items()}

    @classmethod
    def for_run(
        cls, config: SimConfig, counts: SimCounts, oracle_dacc: dict[str, float]
    ) -> SimManifest:
        """The manifest of a run of ``config`` that produced ``counts``."""
        return cls(
            generator=GENERATOR,
            seed=config.seed,
            days=config.days,
            start=config.start.replace(microsecond=0),
            assets={a.symbol: a for a in config.assets},
            labels=config.labels,
            news_per_day=config.news_per_day,
            t_df=config.t_df,
            regime_levels=tuple(config.regime_levels),
            regime_stay=config.regime_stay,
            oracle=OracleInfo(df=config.oracle_df, exact=config.labels.horizon == 1),
            planted_effects=config.effects,
            counts=counts,
            oracle_dacc=dict(oracle_dacc),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``manifest.json``."""
        return {
            "generator": self.generator,
            "seed": self.seed,
            "days": self.days,
            "start": self.start.strftime(TS_FORMAT),
            "symbols": {s: a.asset_class.value for s, a in self.assets.items()},
            "assets": {
                s: {"name": a.name, "aliases": list(a.aliases)} for s, a in self.assets.items()
            },
            "horizon": self.horizon,
            "labels": self.labels.model_dump(),
            "news_per_day": self.news_per_day,
            "t_df": self.t_df,
            "regime_levels": list(self.regime_levels),
            "regime_stay": self.regime_stay,
            "oracle": {"df": self.oracle.df, "exact": self.oracle.exact, "note": self.oracle.note},
            "planted_effects": self.planted_effects.describe(),
            "counts": {
                "bars": dict(self.counts.bars),
                "news": self.counts.news,
                "macro": self.counts.macro,
                "flow": self.counts.flow,
            },
            "oracle_dacc": dict(self.oracle_dacc),
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/manifest.json`` (sorted keys, two-space indent, trailing newline)."""
        path = Path(folder) / MANIFEST_FILE
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)
        path.write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> SimManifest:
        """Parse ``folder/manifest.json``; FileNotFoundError if there is none."""
        path = Path(folder) / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not a simulation folder (no {MANIFEST_FILE})")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a JSON manifest ({exc})") from exc
        return cls.from_dict(raw, where=str(path))

    @classmethod
    def from_dict(cls, raw: object, where: str = MANIFEST_FILE) -> SimManifest:
        """Check and convert a parsed manifest object; errors name ``where`` and the field."""
        r = _Reader(where)
        top = r.obj(raw, "", _TOP_FIELDS)
        labels = r.labels(top["labels"])
        horizon = r.integer(top["horizon"], "horizon")
        if horizon != labels.horizon:
            r.fail("horizon", horizon, f"must equal labels.horizon ({labels.horizon})")
        oracle = r.obj(top["oracle"], "oracle", ("df", "exact", "note"))
        counts = r.obj(top["counts"], "counts", ("bars", "news", "macro", "flow"))
        return cls(
            generator=r.text(top["generator"], "generator"),
            seed=r.integer(top["seed"], "seed"),
            days=r.integer(top["days"], "days"),
            start=r.time(top["start"], "start"),
            assets=r.assets(top["symbols"], top["assets"]),
            labels=labels,
            news_per_day=r.number(top["news_per_day"], "news_per_day"),
            t_df=r.number(top["t_df"], "t_df"),
            regime_levels=tuple(
                r.number(v, f"regime_levels[{i}]")
                for i, v in enumerate(r.array(top["regime_levels"], "regime_levels"))
            ),
            regime_stay=r.number(top["regime_stay"], "regime_stay"),
            oracle=OracleInfo(
                df=r.number(oracle["df"], "oracle.df"),
                exact=r.flag(oracle["exact"], "oracle.exact"),
                note=r.text(oracle["note"], "oracle.note"),
            ),
            planted_effects=r.effects(top["planted_effects"]),
            counts=SimCounts(
                bars=r.table(counts["bars"], "counts.bars", r.integer),
                news=r.integer(counts["news"], "counts.news"),
                macro=r.integer(counts["macro"], "counts.macro"),
                flow=r.integer(counts["flow"], "counts.flow"),
            ),
            oracle_dacc=r.table(top["oracle_dacc"], "oracle_dacc", r.number),
        )


_TOP_FIELDS = tuple(f.name for f in fields(SimManifest) if f.name != "assets") + (
    "symbols",
    "assets",
    "horizon",
)


class _Reader:
    """Field checks that name the manifest and the dotted field path in every error."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, name: str, value: object, why: str) -> NoReturn:
        raise InputError(f"{self.where}: field {name!r} = {value!r}: {why}")

    def obj(self, value: object, name: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
        """A JSON object with exactly ``keys`` (all required, no others)."""
        label = name or "manifest"
        if not isinstance(value, Mapping):
            raise InputError(f"{self.where}: {label} must be a JSON object, got {value!r}")
        for key in keys:
            if key not in value:
                raise InputError(f"{self.where}: field {_join(name, key)!r} is missing")
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise InputError(f"{self.where}: unknown field(s) {[_join(name, k) for k in unknown]}")
        return value

    def integer(self, value: object, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, value, "must be an integer")
        return value  # type: ignore[return-value]

    def number(self, value: object, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(name, value, "must be a number")
        return value  # type: ignore[return-value]

    def flag(self, value: object, name: str) -> bool:
        if not isinstance(value, bool):
            self.fail(name, value, "must be true or false")
        return value  # type: ignore[return-value]

    def text(self, value: object, name: str) -> str:
        if not isinstance(value, str):
            self.fail(name, value, "must be a string")
        return value  # type: ignore[return-value]

    def array(self, value: object, name: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(name, value, "must be a JSON array")
        return value  # type: ignore[return-value]

    def time(self, value: object, name: str) -> datetime:
        try:
            return datetime.strptime(self.text(value, name), TS_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            self.fail(name, value, "must be a UTC time like 2025-01-06T00:00:00Z")

    def table(self, value: object, name: str, check: Any) -> dict[str, Any]:
        """A JSON object of symbol -> value, each value passed through ``check``."""
        if not isinstance(value, Mapping):
            self.fail(name, value, "must be a JSON object")
        return {str(k): check(v, _join(name, str(k))) for k, v in value.items()}  # type: ignore[union-attr]

    def labels(self, value: object) -> LabelSettings:
        try:
            return LabelSettings.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in ("labels", *first["loc"]))
            raise InputError(
                f"{self.where}: field {loc!r} = {first.get('input')!r}: {first['msg']}"
            ) from exc

    def assets(self, symbols: object, meta: object) -> dict[str, Asset]:
        classes = self.table(symbols, "symbols", self.text)
        if not classes:
            self.fail("symbols", symbols, "must name at least one symbol")
        info = self.obj(meta, "assets", tuple(classes))
        out: dict[str, Asset] = {}
        for symbol, text in classes.items():
            try:
                asset_class = AssetClass(text)
            except ValueError:
                self.fail(f"symbols.{symbol}", text, "must be crypto, stocks or forex")
            entry = self.obj(info[symbol], f"assets.{symbol}", ("name", "aliases"))
            aliases = self.array(entry["aliases"], f"assets.{symbol}.aliases")
            name = self.text(entry["name"], f"assets.{symbol}.name")
            forms = tuple(
                self.text(a, f"assets.{symbol}.aliases[{i}]") for i, a in enumerate(aliases)
            )
            try:
                out[symbol] = Asset(
                    symbol=symbol, asset_class=asset_class, name=name, aliases=forms
                )
            except ValidationError as exc:
                self.fail(f"assets.{symbol}", entry, exc.errors()[0]["msg"])
        return out

    def effects(self, value: object) -> PlantedEffects:
        """The effect sizes; the formula texts beside them must be strings."""
        got = self.obj(value, "planted_effects", _EFFECT_NUMBERS + _EFFECT_TEXTS)
        for key in _EFFECT_TEXTS:
            self.text(got[key], f"planted_effects.{key}")
        return PlantedEffects(
            **{k: self.number(got[k], f"planted_effects.{k}") for k in _EFFECT_NUMBERS}
        )


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
