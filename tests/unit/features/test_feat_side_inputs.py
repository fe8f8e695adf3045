"""Side inputs on the bar grid: publication timing, decay, neutral values, rejected rows."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from app.features.batch import build_features
from app.features.side_items import (
    flow_items,
    macro_items,
    scored_news_items,
    side_inputs_per_bar,
)
from app.features.spec import default_spec
from tests.builders import bars_frame
from tests.unit.features.feat_builders import all_flow_spec

FIVE_MIN = pd.Timedelta(minutes=5)


def _close(frame: pd.DataFrame, i: int) -> pd.Timestamp:
    return frame["ts"].iloc[i] + FIVE_MIN


def _utc(values) -> pd.Series:  # type: ignore[no-untyped-def]
    return pd.Series(pd.to_datetime(values, utc=True)).astype("datetime64[ns, UTC]")


def _news(frame: pd.DataFrame, rows: list[tuple[pd.Timestamp, float]], symbol="BTCUSDT"):  # type: ignore[no-untyped-def]
    return pd.DataFrame(
        {
            "published_at": _utc([t for t, _ in rows]),
            "symbol": symbol,
            "news_id": [f"n{i}" for i in range(len(rows))],
            "score": [s for _, s in rows],
            "topic_earnings": 1.0,
        }
    )


def test_news_counts_from_the_bar_whose_close_reaches_it() -> None:
    frame = bars_frame(n=80)
    spec = default_spec("crypto")
    at_close = _close(frame, 10)
    news = _news(frame, [(at_close, 0.8), (_close(frame, 20) + pd.Timedelta(1, "us"), -0.6)])
    out = build_features(frame, asset_class="crypto", news=news)
    s, prior = out["sentiment_score"].to_numpy(), spec.news_prior_weight
    assert (s[:10] == 0).all() and out["news_age"].iloc[9] == spec.news_age_cap_bars
    assert s[10] == pytest.approx(0.8 / (1 + prior))
    assert out["news_age"].iloc[10] == 0.0 and out["news_age"].iloc[15] == 5.0
    w = 0.5 ** ((20 - 10) / 24)
    assert s[20] == pytest.approx(0.8 * w / (w + prior))  # B is 1 us too late for bar 20
    w_a = 0.5 ** ((21 - 10) / 24)
    w_b = 0.5 ** ((300 - 1e-6) / 7200)  # B is 5 min - 1 us old at the close of bar 21
    assert s[21] == pytest.approx((0.8 * w_a - 0.6 * w_b) / (w_a + w_b + prior), rel=1e-9)
    assert out["topic_earnings"].iloc[10] == pytest.approx(1.0)
    assert out["sentiment_velocity"].iloc[10] == pytest.approx(s[10])
    assert out["sentiment_velocity"].iloc[30] == pytest.approx(s[30] - s[18])


def test_half_life_and_other_symbols() -> None:
    frame = bars_frame(n=80)
    news = pd.concat(
        [
            _news(frame, [(_close(frame, 5), 0.5)]),
            _news(frame, [(_close(frame, 6), -1.0)], symbol="ETHUSDT"),  # not ours
        ]
    )
    out = build_features(frame, asset_class="crypto", news=news)
    assert out["news_intensity"].iloc[5] == pytest.approx(1.0)
    assert out["news_intensity"].iloc[5 + 24] == pytest.approx(0.5)
    assert out["news_intensity"].iloc[5 + 48] == pytest.approx(0.25)
    assert (out["sentiment_score"].iloc[5:] > 0).all()


def test_fear_greed_scaling_age_and_asset_class_choice() -> None:
    frame = bars_frame(n=60)
    macro = pd.DataFrame(
        {
            "symbol": ["fear_greed_crypto", "fear_greed_stocks", "vix", "dvol"],
            "ts": _utc([_close(frame, 0)] * 4),
            "published_at": _utc(
                [_close(frame, 10), _close(frame, 12), _close(frame, 3), _close(frame, 4)]
            ),
            "value": [75.0, 20.0, 18.0, 55.0],
        }
    )
    crypto = build_features(frame, asset_class="crypto", macro=macro)
    assert (crypto["fear_greed"].iloc[:10] == 0).all()
    assert crypto["fear_greed"].iloc[10] == 0.5 and crypto["fear_greed_age"].iloc[13] == 3.0
    assert crypto["implied_vol"].iloc[4] == pytest.approx(0.55)  # dvol for crypto
    stocks = build_features(frame.assign(symbol="AAPL"), asset_class="stocks", macro=macro)
    assert stocks["fear_greed"].iloc[12] == pytest.approx(-0.6)
    assert stocks["implied_vol"].iloc[3] == pytest.approx(0.18)  # vix for stocks
    forex = build_features(frame.assign(symbol="EURUSD"), asset_class="forex", macro=macro)
    spec = default_spec("forex")
    assert (forex["fear_greed"] == 0).all()
    assert (forex["fear_greed_age"] == spec.macro_age_cap_bars).all()


def test_missing_modalities_are_neutral_never_nan() -> None:
    frame = bars_frame(n=300)
    for asset_class in ("crypto", "stocks", "forex"):
        spec = default_spec(asset_class)
        out = build_features(frame, asset_class=asset_class)
        side = out[list(spec.side_names)]
        assert not side.isna().any().any()
        ages = [n for n in spec.side_names if n.endswith("_age")]
        caps = {"news_age": spec.news_age_cap_bars, "flow_age": spec.flow_age_cap_bars}
        for name in ages:
            assert (side[name] == caps.get(name, spec.macro_age_cap_bars)).all(), name
        values = [n for n in spec.side_names if not n.endswith("_age")]
        assert (side[values] == 0.0).all().all()


def _flow(rows: list[tuple[str, pd.Timestamp, float]], symbol: str = "BTCUSDT") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbol,
            "kind": [k for k, _, _ in rows],
            "ts": _utc([t for _, t, _ in rows]),
            "published_at": _utc([t for _, t, _ in rows]),
            "value": [v for _, _, v in rows],
        }
    )


def test_flow_features_by_hand() -> None:
    frame = bars_frame(n=60)
    spec = all_flow_spec()
    c = lambda i: _close(frame, i)  # noqa: E731
    flow = _flow(
        [
            ("exchange_net_flow", c(2), 100.0),
            ("exchange_net_flow", c(4), -100.0),
            ("exchange_net_flow", c(6), 400.0),
            ("active_addresses", c(3), 1000.0),
            ("active_addresses", c(8), 1100.0),
            ("dark_pool_ratio", c(5), 0.42),
            ("dark_pool_ratio", c(7), 0.30),
            ("block_trade", c(9) - pd.Timedelta(seconds=30), 50_000.0),
            ("uoa_call_premium", c(10), 3.0),
            ("uoa_put_premium", c(10), 1.0),
            ("trade_print", c(11), 100.0),
            ("trade_print", c(11), 300.0),
        ]
    )
    out = build_features(frame, asset_class="crypto", flow=flow, spec=spec)
    z = out["exchange_net_flow"].to_numpy()
    assert z[2] == 0.0 and z[4] == pytest.approx(-1.0)
    values = np.array([100.0, -100.0, 400.0])
    assert z[6] == pytest.approx((400 - values.mean()) / values.std()) and z[40] == z[6]
    assert out["active_addresses_chg"].iloc[7] == 0.0
    assert out["active_addresses_chg"].iloc[8] == pytest.approx(math.log(1.1))
    dark = out["dark_pool_ratio"]  # the share in force (one session here: held to the end)
    assert dark.iloc[4] == 0.0 and dark.iloc[5] == 0.42 and dark.iloc[6] == 0.42
    assert dark.iloc[7] == 0.30 and dark.iloc[50] == 0.30
    dev = out["dark_pool_ratio_dev"]  # share minus the mean of the recent shares
    assert (
        dev.iloc[5] == 0.0
        and dev.iloc[7] == pytest.approx(0.30 - 0.36)
        and dev.iloc[50] == dev.iloc[7]
    )
    flags = out["block_trade_flag"].to_numpy()
    assert flags[9] == 1.0 and flags.sum() == 1.0  # only in the bar it printed
    assert out["uoa_call_put_ratio"].iloc[10] == pytest.approx(0.5)
    assert out["uoa_call_put_ratio"].iloc[30] == pytest.approx(0.5)  # both decay alike
    assert out["trade_size_dev"].iloc[11] == pytest.approx(0.0)  # recent == long-run mean
    assert out["flow_age"].iloc[11] == 0.0 and out["flow_age"].iloc[1] == spec.flow_age_cap_bars
    assert out["flow_age"].iloc[15] == 4.0


def test_dark_pool_report_holds_through_the_next_session_only() -> None:
    """Four 12-bar sessions 17 h apart. A report published in the night after session 0 is
    in force on session 1 and gone on session 2; one published inside session 2 holds for its
    rest and for session 3. Batch by hand, and the incremental engine equal to it."""
    from tests.unit.features.feat_builders import replay, run_incremental

    parts = [bars_frame(n=12, seed=k) for k in range(4)]
    for k, part in enumerate(parts):
        part["ts"] = part["ts"] + pd.Timedelta(hours=18 * k)
    frame = pd.concat(parts, ignore_index=True)
    spec = default_spec("stocks")
    night = frame["ts"].iloc[11] + pd.Timedelta(hours=2)
    inside = _close(frame, 29) - pd.Timedelta(seconds=1)
    flow = _flow([("dark_pool_ratio", night, 0.4), ("dark_pool_ratio", inside, 0.6)], "AAPL")
    frame["symbol"] = "AAPL"
    out = build_features(frame, asset_class="stocks", flow=flow, spec=spec)
    want = np.zeros(48)
    want[12:24] = 0.4  # the next session
    want[29:48] = 0.6  # the rest of its session and the next one
    np.testing.assert_array_equal(out["dark_pool_ratio"].to_numpy(), want)
    dev = out["dark_pool_ratio_dev"].to_numpy()
    assert (dev[12:24] == 0.0).all() and dev[29] == pytest.approx(0.6 - 0.5)
    assert (dev[24:29] == 0.0).all() and dev[40] == dev[29]
    incremental = run_incremental(spec, frame, replay(frame["ts"], None, None, flow))
    np.testing.assert_array_equal(incremental["dark_pool_ratio"].to_numpy(), want)
    np.testing.assert_allclose(incremental["dark_pool_ratio_dev"].to_numpy(), dev, rtol=1e-12)


def test_bad_side_rows_are_rejected_counted_and_good_rows_kept() -> None:
    frame = bars_frame(n=40)
    spec = all_flow_spec()
    c = _close(frame, 3)
    news = _news(frame, [(c, 0.4), (c, 1.5), (c, float("nan"))])
    news.loc[3] = [pd.NaT, "BTCUSDT", "n3", 0.1, 0.5]
    news["published_at"] = news["published_at"].astype("datetime64[ns, UTC]")
    macro = pd.DataFrame(
        {
            "symbol": "fear_greed_crypto",
            "ts": _utc([c, c]),
            "published_at": _utc([c, c]),
            "value": [60.0, 140.0],
        }
    )
    flow = _flow(
        [
            ("dark_pool_ratio", c, 1.7),
            ("dark_pool_ratio", c, 0.5),
            ("dark_pool_ratio", c, 0.3),
            ("trade_print", c, -5.0),
        ]
    )
    out = build_features(frame, asset_class="crypto", news=news, macro=macro, flow=flow, spec=spec)
    assert out.attrs["rejected_side_rows"] == {
        "news.published_at_missing": 1,
        "news.score_out_of_range": 1,
        "news.score_not_finite": 1,
        "macro.fear_greed_crypto.value_out_of_range": 1,
        "flow.dark_pool_ratio.value_out_of_range": 1,
        "flow.trade_print.value_out_of_range": 1,
    }
    assert out["sentiment_score"].iloc[3] == pytest.approx(0.4 / (1 + spec.news_prior_weight))
    assert out["fear_greed"].iloc[3] == pytest.approx(0.2)
    assert out["dark_pool_ratio"].iloc[3] == 0.3  # the last of the valid ones
    assert out["dark_pool_ratio_dev"].iloc[3] == pytest.approx(0.3 - 0.4)  # 1.7 left out


def test_side_frame_errors_name_the_column() -> None:
    from app.errors import InputError

    frame = bars_frame(n=10)
    with pytest.raises(InputError, match="score"):
        build_features(
            frame,
            asset_class="crypto",
            news=pd.DataFrame({"published_at": _utc([_close(frame, 1)])}),
        )
    naive = pd.DataFrame({"published_at": [pd.Timestamp("2025-01-01")], "score": [0.1]})
    with pytest.raises(InputError, match="news.published_at"):
        build_features(frame, asset_class="crypto", news=naive)
    with pytest.raises(InputError, match="kind"):
        build_features(frame, asset_class="crypto", flow=pd.DataFrame({"value": [1.0]}))


def test_frames_to_incremental_items_keep_good_rows() -> None:
    frame = bars_frame(n=5)
    c = _close(frame, 1)
    rejected: Counter[str] = Counter()
    items = scored_news_items(_news(frame, [(c, 0.4)]), rejected)
    assert [i.score for i in items] == [0.4] and items[0].topics == {"earnings": 1.0}
    assert items[0].published_at == c.to_pydatetime()
    macro = pd.DataFrame({"symbol": ["vix"], "ts": _utc([c]), "published_at": _utc([c]),
                          "value": [18.0]})  # fmt: skip
    assert [(m.name, m.value) for m in macro_items(macro, rejected)] == [("vix", 18.0)]
    flow = flow_items(_flow([("block_trade", c, 5.0)]), rejected)
    assert [(f.kind, f.value) for f in flow] == [("block_trade", 5.0)]
    assert rejected == Counter()


@pytest.mark.parametrize(
    ("score", "reason"),
    [
        (1.5, "news.score.out_of_range"),
        (float("nan"), "news.score.out_of_range"),
        ("bullish", "news.score.unparseable"),
    ],
)
def test_bad_news_rows_are_rejected_and_counted(score: object, reason: str) -> None:
    frame = bars_frame(n=5)
    c = _close(frame, 1)
    news = _news(frame, [(c, 0.4), (c, score), (c, -0.2)])
    rejected: Counter[str] = Counter()
    assert [i.score for i in scored_news_items(news, rejected)] == [0.4, -0.2]
    assert rejected == Counter({reason: 1})


def test_bad_news_topic_and_time_are_rejected_and_counted() -> None:
    frame = bars_frame(n=5)
    c = _close(frame, 1)
    news = _news(frame, [(c, 0.4), (c, 0.1), (c, 0.3)])
    news["topic_earnings"] = [1.0, 1.7, 0.5]
    news["published_at"] = news["published_at"].astype(object)
    news.loc[2, "published_at"] = pd.Timestamp("2025-01-01 12:00")  # naive: no UTC offset
    rejected: Counter[str] = Counter()
    assert [i.score for i in scored_news_items(news, rejected)] == [0.4]
    assert rejected == Counter(
        {"news.topic_earnings.out_of_range": 1, "news.published_at.bad_timestamp": 1}
    )


@pytest.mark.parametrize(
    ("name", "published_offset", "value", "reason"),
    [
        ("", 0, 1.0, "macro.name.bad_name"),  # an empty name is not a series
        ("vix", 0, float("inf"), "macro.value.nan"),
        ("vix", 0, None, "macro.value.unparseable"),
        ("vix", -1, 20.0, "macro.published_at.published_before_ts"),
    ],
)
def test_bad_macro_rows_are_rejected_and_counted(
    name: str, published_offset: int, value: object, reason: str
) -> None:
    frame = bars_frame(n=5)
    c = _close(frame, 1)
    published = c + published_offset * FIVE_MIN
    macro = pd.DataFrame({"symbol": ["vix", name], "ts": _utc([c, c]),
                          "published_at": _utc([c, published]),
                          "value": pd.Series([18.0, value], dtype=object)})  # fmt: skip
    rejected: Counter[str] = Counter()
    assert [(m.name, m.value) for m in macro_items(macro, rejected)] == [("vix", 18.0)]
    assert rejected == Counter({reason: 1})


@pytest.mark.parametrize(
    ("symbol", "kind", "value", "reason"),
    [
        ("BTCUSDT", "block_trade", float("inf"), "flow.value.nan"),
        ("BTCUSDT", "block_trade", "big", "flow.value.unparseable"),
        ("BTCUSDT", "", 5.0, "flow.kind.bad_kind"),
        ("", "block_trade", 5.0, "flow.symbol.bad_symbol"),
    ],
)
def test_bad_flow_rows_are_rejected_and_counted(
    symbol: str, kind: str, value: object, reason: str
) -> None:
    frame = bars_frame(n=5)
    c = _close(frame, 1)
    flow = _flow([("block_trade", c, 5.0), (kind, c, 0.0)])
    flow["value"] = pd.Series([5.0, value], dtype=object)
    flow["symbol"] = ["BTCUSDT", symbol]
    rejected: Counter[str] = Counter()
    assert [(f.kind, f.value) for f in flow_items(flow, rejected)] == [("block_trade", 5.0)]
    assert rejected == Counter({reason: 1})


def test_replay_counts_the_rows_it_refuses() -> None:
    frame = bars_frame(n=5)
    c = _close(frame, 1)
    rejected: Counter[str] = Counter()
    per_bar = side_inputs_per_bar(
        frame["ts"], news=_news(frame, [(c, 0.4), (c, 2.0)]), rejected=rejected
    )
    assert [len(b.news) for b in per_bar] == [0, 1, 0, 0, 0]
    assert rejected == Counter({"news.score.out_of_range": 1})
