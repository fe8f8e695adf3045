"""Institutional and on-chain flow as ``FlowPoint``s: FINRA short volume, unusual options
activity, Coin Metrics (CSV export and community API), and the store's own flow CSV.

Publication rules (features use a point only from ``published_at`` on):

- FINRA daily short-volume file (pipe-delimited
  ``Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market``, one file per trading day at
  ``{base}/equity/regsho/daily/CNMSshvol<YYYYMMDD>.txt``): FINRA posts it after the close,
  generally by 18:00 New York time, so ``published_at`` = 18:00 America/New_York of the
  trading day (22:00 UTC in summer, 23:00 UTC in winter); ``ts`` = the day 00:00 UTC. Kinds:
  ``short_volume`` (shares), ``short_volume_ratio`` (ShortVolume / TotalVolume) and
  ``offexchange_volume`` (TotalVolume: the shares reported to FINRA's off-exchange
  facilities, the public proxy for dark-pool + internalised volume).
- Options flow CSV (unusual options activity, no standard vendor format): one print per row
  with ``ts, symbol, put_call, premium`` (aliases below) and an optional ``published_at``;
  a print is public when it prints, so ``published_at`` defaults to ``ts``. Kinds
  ``uoa_call_premium`` / ``uoa_put_premium`` (value = premium).
- Coin Metrics daily metrics (CSV export ``date,AdrActCnt,FlowInExNtv,FlowOutExNtv,...`` or
  ``GET {base}/v4/timeseries/asset-metrics``): a daily value is final only after its UTC day
  closes, so ``ts`` = the day 00:00 UTC and ``published_at`` = the next day 00:00 UTC; the
  API's still-open day is rejected (``not_final``). Kinds ``active_addresses``,
  ``exchange_inflow``, ``exchange_outflow`` (native units) and the derived
  ``exchange_net_flow`` = inflow - outflow (positive = coins moving onto exchanges).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.errors import InputError
from app.sources import SourceUnavailable
from app.sources.http import HttpClient, RequestRejected
from app.sources.side_batch import BadRow, SideBatch
from app.sources.side_batch import parse_iso_utc as _iso_utc
from app.types import FlowPoint

NEW_YORK = ZoneInfo("America/New_York")
DAY = timedelta(days=1)
FINRA_BASE_URL = "https://cdn.finra.org"
FINRA_COLUMNS = ("Date", "Symbol", "ShortVolume", "ShortExemptVolume", "TotalVolume", "Market")
FINRA_PUBLISHED_LOCAL = time(18, 0)  # New York wall clock
COINMETRICS_BASE_URL = "https://community-api.coinmetrics.io"
# Coin Metrics metric -> flow kind (the net flow is derived from the two exchange flows)
COINMETRICS_KINDS: Mapping[str, str] = {
    "AdrActCnt": "active_addresses",
    "FlowInExNtv": "exchange_inflow",
    "FlowOutExNtv": "exchange_outflow",
}
OPTIONS_ALIASES: Mapping[str, tuple[str, ...]] = {
    "ts": ("ts", "time", "timestamp", "datetime", "executed_at"),
    "symbol": ("symbol", "ticker", "underlying", "underlying_symbol"),
    "put_call": ("put_call", "call_put", "cp", "type", "option_type", "side"),
    "premium": ("premium", "total_premium", "premium_usd"),
    "published_at": ("published_at", "reported_at", "alert_time"),
}
_CALL = {"c", "call", "calls"}
_PUT = {"p", "put", "puts"}
STORE_FLOW_COLUMNS = ("symbol", "kind", "ts", "published_at", "value")


def _number(raw: Any, reason: str = "bad_value") -> float:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise BadRow("missing_value")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadRow(reason) from None
    if not math.isfinite(value):
        raise BadRow(reason)
    return value


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _open_csv(path: Path | str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow file {path} does not exist")
    return path


# --------------------------------------------------------------------------- FINRA


def finra_published_at(day: date) -> datetime:
    """When FINRA's short-volume file of ``day`` is public: 18:00 New York, in UTC."""
    return datetime.combine(day, FINRA_PUBLISHED_LOCAL, tzinfo=NEW_YORK).astimezone(UTC)


def _finra_points(fields: list[str], wanted: frozenset[str] | None) -> list[FlowPoint]:
    if len(fields) != len(FINRA_COLUMNS):
        raise BadRow("bad_field_count")
    raw_date, symbol = fields[0].strip(), fields[1].strip()
    try:
        day = datetime.strptime(raw_date, "%Y%m%d").date()  # noqa: DTZ007 - a calendar day
    except ValueError:
        raise BadRow("bad_date") from None
    if not symbol:
        raise BadRow("missing_symbol")
    if wanted is not None and symbol not in wanted:
        return []
    short = _number(fields[2])
    total = _number(fields[4])
    if short < 0 or total < 0 or short > total:
        raise BadRow("bad_volume")
    ts, published = _day_start(day), finra_published_at(day)
    points = [
        FlowPoint(symbol, "short_volume", ts, published, short),
        FlowPoint(symbol, "offexchange_volume", ts, published, total),
    ]
    if total > 0:
        points.append(FlowPoint(symbol, "short_volume_ratio", ts, published, short / total))
    return points


def parse_finra_short_volume(
    text: str, *, where: str, symbols: Iterable[str] | None = None
) -> SideBatch[FlowPoint]:
    """Rows of one FINRA short-volume file; ``symbols`` keeps only those tickers (rows of other
    tickers are read but give no points). A header other than FINRA's is an InputError."""
    lines = text.splitlines()
    if not lines or [c.strip() for c in lines[0].split("|")] != list(FINRA_COLUMNS):
        head = lines[0][:120] if lines else ""
        raise InputError(f"{where}: header {head!r} is not FINRA's {'|'.join(FINRA_COLUMNS)}")
    wanted = frozenset(symbols) if symbols else None
    batch: SideBatch[FlowPoint] = SideBatch(where)
    for line in lines[1:]:
        if not line.strip():
            continue
        batch.add(lambda f=line.split("|"): _finra_points(f, wanted))
    return batch


def read_finra_files(
    path: Path | str, *, symbols: Iterable[str] | None = None
) -> SideBatch[FlowPoint]:
    """One FINRA file, or every ``*shvol*.txt`` file of a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*shvol*.txt") if p.is_file())
        if not files:
            raise InputError(f"{path}: no FINRA short-volume files (*shvol*.txt)")
    else:
        files = [_open_csv(path)]
    total: SideBatch[FlowPoint] = SideBatch(str(path))
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        total.extend(parse_finra_short_volume(text, where=str(file), symbols=symbols))
    return total


def finra_url(day: date, *, base_url: str = FINRA_BASE_URL, market: str = "CNMS") -> str:
    return f"{base_url.rstrip('/')}/equity/regsho/daily/{market}shvol{day:%Y%m%d}.txt"


def fetch_finra_days(
    client: HttpClient,
    start: date,
    end: date,
    *,
    base_url: str = FINRA_BASE_URL,
    symbols: Iterable[str] | None = None,
    market: str = "CNMS",
) -> SideBatch[FlowPoint]:
    """Files of the weekdays in ``[start, end]``; a day without a file (a holiday: FINRA
    answers 403/404) is listed in ``missing``, not an error."""
    if end < start:
        raise InputError(f"until={end} is before since={start}")
    wanted = list(symbols) if symbols else None
    total: SideBatch[FlowPoint] = SideBatch(finra_url(start, base_url=base_url, market=market))
    day = start
    while day <= end:
        if day.weekday() < 5:
            url = finra_url(day, base_url=base_url, market=market)
            try:
                text = client.get_bytes(url).decode("utf-8", errors="replace")
            except RequestRejected as exc:
                if exc.status not in (403, 404):
                    raise
                total.missing.append(url)
            else:
                total.extend(parse_finra_short_volume(text, where=url, symbols=wanted))
        day += DAY
    return total


# --------------------------------------------------------------------------- options flow


def _resolve_columns(header: Sequence[str], path: Path) -> dict[str, str]:
    """Canonical name -> the file's column, via OPTIONS_ALIASES (case-insensitive)."""
    lower = {h.strip().lower(): h for h in header}
    found: dict[str, str] = {}
    for canonical, aliases in OPTIONS_ALIASES.items():
        for alias in aliases:
            if alias in lower:
                found[canonical] = lower[alias]
                break
    missing = [c for c in ("ts", "symbol", "put_call", "premium") if c not in found]
    if missing:
        raise InputError(
            f"{path}: options-flow file lacks column(s) {missing} (accepted names: "
            + "; ".join(f"{c}: {','.join(OPTIONS_ALIASES[c])}" for c in missing)
            + ")"
        )
    return found


def _option_point(row: Mapping[str, str], cols: Mapping[str, str], assume_utc: bool) -> FlowPoint:
    ts = _iso_utc(row[cols["ts"]], assume_utc=assume_utc)
    published = ts
    if "published_at" in cols and (row.get(cols["published_at"]) or "").strip():
        published = _iso_utc(row[cols["published_at"]], assume_utc=assume_utc)
        if published < ts:
            raise BadRow("published_before_ts")
    symbol = (row[cols["symbol"]] or "").strip().upper()
    if not symbol:
        raise BadRow("missing_symbol")
    side = (row[cols["put_call"]] or "").strip().lower()
    if side in _CALL:
        kind = "uoa_call_premium"
    elif side in _PUT:
        kind = "uoa_put_premium"
    else:
        raise BadRow("bad_put_call")
    premium = _number(str(row[cols["premium"]]).replace("$", "").replace(",", ""), "bad_premium")
    if premium <= 0:
        raise BadRow("bad_premium")
    return FlowPoint(symbol, kind, ts, published, premium)


def read_options_flow_csv(path: Path | str, *, assume_utc: bool = False) -> SideBatch[FlowPoint]:
    """Unusual-options prints -> ``uoa_call_premium`` / ``uoa_put_premium`` points.

    Timestamps need a UTC offset; with ``assume_utc`` a naive one is taken as UTC.
    """
    path = _open_csv(path)
    batch: SideBatch[FlowPoint] = SideBatch(str(path))
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = _resolve_columns(list(reader.fieldnames or []), path)
        for row in reader:
            if None in row:
                batch.rows_read += 1
                batch.rejected["extra_fields"] += 1
                continue
            batch.add(lambda r=row: _option_point(r, cols, assume_utc))
    return batch


# --------------------------------------------------------------------------- Coin Metrics


def coinmetrics_points(
    day: datetime, values: Mapping[str, Any], symbol: str, rejected: Any
) -> list[FlowPoint]:
    """Points of one daily row; a missing or bad metric is counted (``missing_<kind>``) and
    skipped while the row's other metrics are kept."""
    published = day + DAY
    points: list[FlowPoint] = []
    got: dict[str, float] = {}
    for metric, kind in COINMETRICS_KINDS.items():
        try:
            value = _number(values.get(metric))
        except BadRow:
            rejected[f"missing_{kind}"] += 1
            continue
        if value < 0:
            rejected[f"negative_{kind}"] += 1
            continue
        got[kind] = value
        points.append(FlowPoint(symbol, kind, day, published, value))
    if "exchange_inflow" in got and "exchange_outflow" in got:
        net = got["exchange_inflow"] - got["exchange_outflow"]
        points.append(FlowPoint(symbol, "exchange_net_flow", day, published, net))
    return points


def read_coinmetrics_csv(path: Path | str, *, symbol: str) -> SideBatch[FlowPoint]:
    """A Coin Metrics daily export (``date`` + metric columns) for the bars of ``symbol``."""
    path = _open_csv(path)
    batch: SideBatch[FlowPoint] = SideBatch(str(path))
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        if "date" not in header or not set(COINMETRICS_KINDS) & set(header):
            raise InputError(
                f"{path}: not a Coin Metrics daily export (need 'date' and any of "
                f"{list(COINMETRICS_KINDS)}; got {header})"
            )
        for row in reader:
            batch.add(lambda r=row: _coinmetrics_csv_row(r, symbol, batch))
    return batch


def _coinmetrics_csv_row(
    row: Mapping[str, str], symbol: str, batch: SideBatch[FlowPoint]
) -> list[FlowPoint]:
    try:
        day = _day_start(date.fromisoformat((row.get("date") or "").strip()))
    except ValueError:
        raise BadRow("bad_date") from None
    return coinmetrics_points(day, row, symbol, batch.rejected)


def parse_coinmetrics_api(
    payload: Any, *, where: str, symbol: str, now: datetime | None = None
) -> tuple[SideBatch[FlowPoint], str | None]:
    """(points of one ``asset-metrics`` page, its ``next_page_token`` or None)."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), list):
        raise SourceUnavailable(f"{where}: not a Coin Metrics answer (no data list)")
    limit = now if now is not None else datetime.now(UTC)
    batch: SideBatch[FlowPoint] = SideBatch(where)

    def build(row: Any) -> list[FlowPoint]:
        if not isinstance(row, Mapping):
            raise BadRow("not_an_object")
        stamp = _iso_utc(str(row.get("time") or ""))
        day = _day_start(stamp.date())
        if day + DAY > limit:
            raise BadRow("not_final")
        return coinmetrics_points(day, row, symbol, batch.rejected)

    for row in payload["data"]:
        batch.add(lambda r=row: build(r))
    token = payload.get("next_page_token")
    return batch, token if isinstance(token, str) and token else None


def fetch_coinmetrics(
    client: HttpClient,
    *,
    asset: str,
    symbol: str,
    start: date,
    end: date | None = None,
    base_url: str = COINMETRICS_BASE_URL,
    page_size: int = 1000,
    max_pages: int = 20,
    now: datetime | None = None,
) -> SideBatch[FlowPoint]:
    """Daily exchange flows and active addresses of ``asset`` (e.g. ``btc``) from ``start``."""
    url = f"{base_url.rstrip('/')}/v4/timeseries/asset-metrics"
    params: dict[str, str | int] = {
        "assets": asset.lower(),
        "metrics": ",".join(COINMETRICS_KINDS),
        "frequency": "1d",
        "start_time": start.isoformat(),
        "page_size": page_size,
    }
    if end is not None:
        params["end_time"] = end.isoformat()
    total: SideBatch[FlowPoint] = SideBatch(url)
    token: str | None = None
    for _ in range(max(1, max_pages)):
        page_params = {**params, "next_page_token": token} if token else params
        page, token = parse_coinmetrics_api(
            client.get_json(url, params=page_params), where=url, symbol=symbol, now=now
        )
        total.extend(page)
        if token is None:
            break
    return total


# --------------------------------------------------------------------------- store-shaped CSV


def _flow_row(row: Mapping[str, str]) -> FlowPoint:
    return FlowPoint(
        symbol=(row["symbol"] or "").strip(),
        kind=(row["kind"] or "").strip(),
        ts=_iso_utc(row["ts"]),
        published_at=_iso_utc(row["published_at"]),
        value=_number(row["value"]),
    )


def read_flow_csv(path: Path | str) -> SideBatch[FlowPoint]:
    """A file in the store's flow shape (``symbol,kind,ts,published_at,value``, ISO UTC)."""
    path = _open_csv(path)
    text = path.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in STORE_FLOW_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing} for a flow file")
    batch: SideBatch[FlowPoint] = SideBatch(str(path))
    for row in reader:
        batch.add(lambda r=row: _flow_row(r))
    return batch
