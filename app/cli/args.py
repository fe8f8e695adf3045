"""Flag values shared by the commands: KEY=VALUE lists and UTC times."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from app.errors import InputError


def parse_columns(text: str | None) -> dict[str, str]:
    """``--columns Datetime=ts,Open=open`` -> the CsvLayout column map."""
    return parse_pairs("--columns", text.split(",")) if text else {}


def parse_pairs(flag: str, parts: list[str]) -> dict[str, str]:
    """``["a=b", "c=d"]`` -> ``{"a": "b", "c": "d"}``, or InputError naming the bad part."""
    mapping: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{flag} {part!r}: expected KEY=VALUE, e.g. Open=open")
        mapping[key.strip()] = value.strip()
    return mapping


def parse_utc_flag(flag: str, text: str) -> datetime:
    """An ISO-8601 time with an offset, as UTC; InputError naming the flag otherwise."""
    try:
        ts = pd.Timestamp(text)
    except ValueError as exc:
        raise InputError(f"{flag}={text!r}: not an ISO-8601 timestamp") from exc
    if ts.tzinfo is None:
        raise InputError(f"{flag}={text!r}: add a UTC offset, e.g. {text}Z")
    return ts.tz_convert("UTC").to_pydatetime()
