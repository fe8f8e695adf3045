"""Fear & Greed series as ``MacroPoint``s: alternative.me (crypto), CNN (US stocks), CSV replay.

Publication rules (a value is used by features only from ``published_at`` on):

- alternative.me ``GET {base}/fng/?limit=N&format=json``: ``data[].timestamp`` (epoch seconds)
  is 00:00 UTC of the day the index was updated, and alternative.me updates it once a day at
  00:00 UTC (SOURCES.md D1; the API's ``time_until_update`` counts down to the next midnight).
  So ``published_at`` = the API timestamp, and ``ts`` = one day earlier: the 24 hours the value
  summarises. The CSV replay (``date,value,classification``) uses the same rule with
  ``date`` = the API day.
- CNN ``GET {base}/index/fearandgreed/graphdata/<YYYY-MM-DD>``:
  ``fear_and_greed_historical.data[] = {x: epoch ms, y: score}``, one point per US trading
  day. CNN recomputes the value during and after the session, so the day's value is taken as
  final only at 00:00 UTC of the next day: ``ts`` = the trading day 00:00 UTC,
  ``published_at`` = ``ts`` + 1 day. A point that is not final yet at ``now`` is rejected
  (``not_final``) so a still-moving value is never stored under a key that first-write-wins
  would freeze. The CSV replay (``date,value,rating``) uses the same rule.
- A generic replay file in the store's own shape (``name,ts,published_at,value``, the
  simulator's ``macro.csv``) is read as it is.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.errors import InputError
from app.sources import SourceUnavailable
from app.sources.http import HttpClient
from app.sources.side_batch import BadRow, SideBatch
from app.sources.side_batch import parse_iso_utc as _iso_utc
from app.types import MacroPoint

ALTERNATIVE_ME_BASE_URL = "https://api.alternative.me"
CNN_BASE_URL = "https://production.dataviz.cnn.io"
CRYPTO_SERIES = "fear_greed_crypto"
STOCKS_SERIES = "fear_greed_stocks"
DAY = timedelta(days=1)

# header columns that tell the replay layouts apart
CSV_LAYOUTS: Mapping[str, tuple[str, ...]] = {
    "alternative_me": ("date", "value", "classification"),
    "cnn": ("date", "value", "rating"),
    "macro": ("name", "ts", "published_at", "value"),
}


def _value(raw: Any) -> float:
    """A Fear & Greed reading: a number in [0, 100] (the APIs send strings or floats)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise BadRow("missing_value")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadRow("bad_value") from None
    if not math.isfinite(value):
        raise BadRow("bad_value")
    if not 0.0 <= value <= 100.0:
        raise BadRow("value_out_of_range")
    return value


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _parse_day(text: str) -> datetime:
    try:
        return _day_start(date.fromisoformat(text.strip()))
    except ValueError:
        raise BadRow("bad_date") from None


def _utc_now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


# --------------------------------------------------------------------------- alternative.me


def alternative_me_point(published: datetime, raw_value: Any) -> MacroPoint:
    """The value published at ``published`` (00:00 UTC), describing the previous 24 hours."""
    return MacroPoint(
        name=CRYPTO_SERIES, ts=published - DAY, published_at=published, value=_value(raw_value)
    )


def parse_alternative_me(
    payload: Any, *, where: str, now: datetime | None = None
) -> SideBatch[MacroPoint]:
    """Points of an alternative.me ``fng`` answer; a row stamped after ``now`` is rejected."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), list):
        raise SourceUnavailable(f"{where}: not an alternative.me fng answer (no data list)")
    error = (payload.get("metadata") or {}).get("error")
    if error:
        raise SourceUnavailable(f"{where}: alternative.me reports error {error!r}")
    limit = _utc_now(now)
    batch: SideBatch[MacroPoint] = SideBatch(where)

    def build(row: Any) -> MacroPoint:
        if not isinstance(row, Mapping):
            raise BadRow("not_an_object")
        try:
            seconds = int(str(row.get("timestamp", "")).strip())
        except ValueError:
            raise BadRow("bad_ts") from None
        published = datetime.fromtimestamp(seconds, tz=UTC)
        if published > limit:
            raise BadRow("not_final")
        return alternative_me_point(published, row.get("value"))

    for row in payload["data"]:
        batch.add(lambda r=row: build(r))
    return batch


def fetch_alternative_me(
    client: HttpClient,
    *,
    base_url: str = ALTERNATIVE_ME_BASE_URL,
    limit: int = 0,
    now: datetime | None = None,
) -> SideBatch[MacroPoint]:
    """The last ``limit`` daily values (0 = the whole history)."""
    if limit < 0:
        raise InputError(f"limit={limit}: must be >= 0 (0 = whole history)")
    url = f"{base_url.rstrip('/')}/fng/"
    payload = client.get_json(url, params={"limit": limit, "format": "json"})
    return parse_alternative_me(payload, where=url, now=now)


# --------------------------------------------------------------------------- CNN


def cnn_point(trading_day: datetime, raw_value: Any) -> MacroPoint:
    """The value of US trading day ``trading_day`` (00:00 UTC), final at the next 00:00 UTC."""
    return MacroPoint(
        name=STOCKS_SERIES,
        ts=trading_day,
        published_at=trading_day + DAY,
        value=_value(raw_value),
    )


def parse_cnn(payload: Any, *, where: str, now: datetime | None = None) -> SideBatch[MacroPoint]:
    """Daily points of a CNN ``graphdata`` answer; several points of one day keep the last."""
    try:
        rows = payload["fear_and_greed_historical"]["data"]
    except (KeyError, TypeError):
        raise SourceUnavailable(
            f"{where}: not a CNN Fear & Greed answer (no fear_and_greed_historical.data)"
        ) from None
    if not isinstance(rows, list):
        raise SourceUnavailable(f"{where}: fear_and_greed_historical.data is not a list")
    limit = _utc_now(now)
    batch: SideBatch[MacroPoint] = SideBatch(where)

    def build(row: Any) -> MacroPoint:
        if not isinstance(row, Mapping):
            raise BadRow("not_an_object")
        try:
            millis = float(row["x"])
        except (KeyError, TypeError, ValueError):
            raise BadRow("bad_ts") from None
        if not math.isfinite(millis):
            raise BadRow("bad_ts")
        stamp = datetime.fromtimestamp(millis / 1000.0, tz=UTC)
        point = cnn_point(_day_start(stamp.date()), row.get("y"))
        if point.published_at > limit:
            raise BadRow("not_final")
        return point

    for row in rows:
        batch.add(lambda r=row: build(r))
    by_day: dict[datetime, MacroPoint] = {}
    for point in batch.items:
        if point.ts in by_day:
            batch.rejected["duplicate_day"] += 1
        by_day[point.ts] = point  # later points of a day are fresher
    batch.items = sorted(by_day.values(), key=lambda p: p.ts)
    return batch


def fetch_cnn(
    client: HttpClient,
    *,
    start: date,
    base_url: str = CNN_BASE_URL,
    now: datetime | None = None,
) -> SideBatch[MacroPoint]:
    """Daily CNN Fear & Greed values from ``start`` on (CNN wants a browser User-Agent)."""
    url = f"{base_url.rstrip('/')}/index/fearandgreed/graphdata/{start.isoformat()}"
    return parse_cnn(client.get_json(url), where=url, now=now)


# --------------------------------------------------------------------------- CSV replay


def detect_macro_layout(header: list[str], path: Path) -> str:
    for name, required in CSV_LAYOUTS.items():
        if all(c in header for c in required):
            return name
    raise InputError(
        f"{path}: columns {header!r} fit no macro layout ("
        + "; ".join(f"{k}: {','.join(v)}" for k, v in CSV_LAYOUTS.items())
        + ")"
    )


def _macro_row(row: Mapping[str, str]) -> MacroPoint:
    name = row["name"].strip()
    if not name:
        raise BadRow("missing_name")
    return MacroPoint(
        name=name, ts=_iso_utc(row["ts"]), published_at=_iso_utc(row["published_at"]),
        value=_number(row["value"]),
    )  # fmt: skip


def _number(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise BadRow("bad_value") from None
    if not math.isfinite(value):
        raise BadRow("bad_value")
    return value


def read_macro_csv(path: Path | str) -> SideBatch[MacroPoint]:
    """Replay a Fear & Greed CSV (alternative.me or CNN layout, told apart by the header) or a
    file in the store's macro shape. Bad rows are rejected and counted, good rows kept."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"macro file {path} does not exist")
    batch: SideBatch[MacroPoint] = SideBatch(str(path))
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        layout = detect_macro_layout(list(reader.fieldnames or []), path)
        for row in reader:
            clean = {k: (v or "") for k, v in row.items() if k is not None}
            if layout == "alternative_me":
                batch.add(lambda r=clean: alternative_me_point(_parse_day(r["date"]), r["value"]))
            elif layout == "cnn":
                batch.add(lambda r=clean: cnn_point(_parse_day(r["date"]), r["value"]))
            else:
                batch.add(lambda r=clean: _macro_row(r))
    return batch
