"""Fear & Greed: alternative.me and CNN JSON over loopback, and the CSV replays of shared data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.errors import InputError
from app.sources import SourceUnavailable
from app.sources.http import HttpClient, HttpPolicy
from app.sources.macro_sources import (
    fetch_alternative_me,
    fetch_cnn,
    parse_alternative_me,
    parse_cnn,
    read_macro_csv,
)
from tests.unit.sources.side_loopback import LoopbackServer, json_answer

D = datetime(2025, 5, 2, tzinfo=UTC)
NOW = datetime(2025, 5, 2, 15, 0, tzinfo=UTC)


def ts(day: datetime) -> str:
    return str(int(day.timestamp()))


@pytest.fixture
def http():
    with HttpClient(HttpPolicy(timeout_s=2, retries=1, backoff_s=0)) as client:
        yield client


def test_alternative_me_value_is_public_at_its_midnight_and_describes_the_day_before(http):
    payload = {
        "name": "Fear and Greed Index",
        "data": [
            {"value": "67", "value_classification": "Greed", "timestamp": ts(D),
             "time_until_update": "32400"},
            {"value": "61", "value_classification": "Greed", "timestamp": ts(D - timedelta(1))},
            {"value": "abc", "timestamp": ts(D - timedelta(2))},
            {"value": "140", "timestamp": ts(D - timedelta(3))},
            {"value": "50", "timestamp": "not-a-time"},
            {"value": "50", "timestamp": ts(D + timedelta(1))},  # stamped after `now`
            "garbage",
        ],
        "metadata": {"error": None},
    }  # fmt: skip
    with LoopbackServer() as server:
        server.route("/fng/", json_answer(payload))
        batch = fetch_alternative_me(http, base_url=server.url, limit=10, now=NOW)
        assert server.hits("/fng/")[0].query == {"limit": ["10"], "format": ["json"]}
    assert batch.rows_read == 7
    assert dict(batch.rejected) == {
        "bad_value": 1,
        "value_out_of_range": 1,
        "bad_ts": 1,
        "not_final": 1,
        "not_an_object": 1,
    }
    latest, previous = batch.items
    assert latest.name == "fear_greed_crypto" and latest.value == 67.0
    assert latest.published_at == D and latest.ts == D - timedelta(days=1)
    assert previous.published_at == D - timedelta(days=1)


def test_alternative_me_error_or_wrong_shape_is_reported_with_the_url():
    with pytest.raises(SourceUnavailable, match="mem://fng: alternative.me reports error"):
        parse_alternative_me({"data": [], "metadata": {"error": "limit"}}, where="mem://fng")
    with pytest.raises(SourceUnavailable, match="mem://fng: not an alternative.me"):
        parse_alternative_me({"oops": 1}, where="mem://fng")


def test_cnn_day_is_final_at_the_next_utc_midnight(http):
    ms = lambda t: t.timestamp() * 1000  # noqa: E731
    payload = {
        "fear_and_greed": {"score": 58.1, "rating": "greed", "timestamp": NOW.isoformat()},
        "fear_and_greed_historical": {
            "timestamp": ms(NOW),
            "score": 58.1,
            "rating": "greed",
            "data": [
                {"x": ms(D - timedelta(days=2)), "y": 40.2, "rating": "fear"},
                {"x": ms(D - timedelta(days=1)), "y": 44.0, "rating": "fear"},
                {"x": ms(D - timedelta(days=1) + timedelta(hours=20)), "y": 45.5},
                {"x": ms(D), "y": 58.1, "rating": "greed"},  # today: still moving
                {"x": "yesterday", "y": 10},
                {"x": ms(D - timedelta(days=3))},
            ],
        },
    }
    with LoopbackServer() as server:
        server.route("/index/fearandgreed/graphdata/2025-04-28", json_answer(payload))
        batch = fetch_cnn(http, start=date(2025, 4, 28), base_url=server.url, now=NOW)
    assert dict(batch.rejected) == {
        "not_final": 1,
        "bad_ts": 1,
        "missing_value": 1,
        "duplicate_day": 1,
    }
    first, second = batch.items
    assert first.name == "fear_greed_stocks"
    assert (first.ts, first.published_at, first.value) == (D - timedelta(2), D - timedelta(1), 40.2)
    assert (second.ts, second.published_at, second.value) == (D - timedelta(1), D, 45.5)


def test_cnn_wrong_shape_names_the_url():
    with pytest.raises(SourceUnavailable, match="mem://cnn: not a CNN Fear & Greed answer"):
        parse_cnn({"fear_and_greed": {}}, where="mem://cnn")


def test_replay_of_alternative_me_csv(shared_data):
    batch = read_macro_csv(shared_data / "fear_greed" / "crypto_fear_greed_alternative_me.csv")
    assert batch.rows_read == 2942 and batch.rows_rejected == 0
    first, last = batch.items[0], batch.items[-1]
    assert first.name == "fear_greed_crypto" and first.value == 30.0
    assert first.published_at == datetime(2018, 2, 1, tzinfo=UTC)
    assert first.ts == datetime(2018, 1, 31, tzinfo=UTC)
    assert last.published_at == datetime(2026, 2, 24, tzinfo=UTC) and last.value == 8.0
    published = {p.published_at.date() for p in batch.items}
    assert date(2024, 10, 26) not in published  # the upstream gap stays a gap
    assert all(p.published_at - p.ts == timedelta(days=1) for p in batch.items)


def test_replay_of_cnn_csv(shared_data):
    batch = read_macro_csv(shared_data / "fear_greed" / "cnn_fear_greed.csv")
    assert batch.rows_read == 3834 and batch.rows_rejected == 0
    first, last = batch.items[0], batch.items[-1]
    assert first.name == "fear_greed_stocks" and first.value == 68.0
    assert first.ts == datetime(2011, 1, 3, tzinfo=UTC)
    assert first.published_at == datetime(2011, 1, 4, tzinfo=UTC)
    assert (last.ts.date(), last.value) == (date(2026, 5, 1), 66.6)
    assert all(0.0 <= p.value <= 100.0 for p in batch.items)


def test_store_shaped_macro_csv_counts_bad_rows(tmp_path):
    path = tmp_path / "macro.csv"
    path.write_text(
        "name,ts,published_at,value\n"
        "vix,2025-05-01T00:00:00Z,2025-05-02T00:00:00Z,17.5\n"
        "vix,2025-05-02T00:00:00,2025-05-03T00:00:00Z,18\n"
        ",2025-05-02T00:00:00Z,2025-05-03T00:00:00Z,18\n"
        "vix,2025-05-03T00:00:00Z,2025-05-04T00:00:00Z,nan\n"
    )
    batch = read_macro_csv(path)
    assert dict(batch.rejected) == {"naive_ts": 1, "missing_name": 1, "bad_value": 1}
    [point] = batch.items
    assert (point.name, point.value) == ("vix", 17.5)


def test_unknown_csv_layout_and_missing_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("day,score\n2025-01-01,3\n")
    with pytest.raises(InputError, match="fit no macro layout"):
        read_macro_csv(path)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_macro_csv(tmp_path / "nope.csv")
