"""CSV news replay: three layouts, bad rows counted, real files from ../shared/data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.errors import InputError
from app.sources.news_csv import iter_news, read_news_csv


def write(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def test_cryptonews_layout(tmp_path: Path) -> None:
    path = write(
        tmp_path / "crypto_news.csv",
        """
ts,source,subject,title,text,url,tb_class,tb_polarity,tb_subjectivity
2022-06-18T07:16:00,CryptoNews,bitcoin,Bitcoin price falls below $20K,Sellers take over.,https://x/1,negative,-0.1,0.2
2022-06-18T07:10:00,CoinTelegraph,ethereum,,ETH slides under 1000.,https://x/2,neutral,0.0,0.0
not-a-time,CryptoNews,nft,Broken row,text,https://x/3,neutral,0,0
2022-06-18T08:00:00,CryptoNews,defi,,,https://x/4,neutral,0,0
2022-06-18T08:05:00,CryptoNews,defi,Too many,fields,https://x/5,neutral,0,0,EXTRA
""",
    )
    load = read_news_csv(path)
    assert load.format == "cryptonews"
    assert load.n_rows == 5 and len(load.items) == 2
    assert load.rejected == {"bad_ts": 1, "empty_text": 1, "extra_fields": 1}
    first, second = load.items
    assert first.published_at == datetime(2022, 6, 18, 7, 10, tzinfo=UTC)  # sorted by time
    assert (
        first.title == "" and first.body == "ETH slides under 1000." and first.symbols == ("ETH",)
    )
    assert second.symbols == ("BTC",) and second.topic == "bitcoin" and second.url == "https://x/1"
    assert second.text.startswith("Bitcoin price falls below $20K. Sellers take over")
    assert read_news_csv(path).items[1].id == second.id  # ids are stable across reads


def test_stocknet_layout(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tweets.csv",
        """
ts,ticker,tweet_id,text,user_followers
2015-07-01T07:29:09Z,MSFT,616146508191281152,$MSFT Citigroup maintains target,444
2015-07-01T07:10:52Z,GOOG,616141907035574272,RT talk about $GOOG,839
2015-07-01T07:11:00Z,,616141907035574273,no ticker,1
2015-07-01T07:10:52Z,GOOG,616141907035574272,RT talk about $GOOG,839
""",
    )
    load = read_news_csv(path)
    assert load.format == "stocknet"
    assert [i.id for i in load.items] == [
        "stocknet:GOOG:616141907035574272",
        "stocknet:MSFT:616146508191281152",
    ]
    assert load.items[1].symbols == ("MSFT",)
    assert load.items[1].published_at == datetime(2015, 7, 1, 7, 29, 9, tzinfo=UTC)
    assert load.rejected == {"missing_ticker": 1, "duplicate_id": 1}


def test_simulator_layout_and_replay_window(tmp_path: Path) -> None:
    path = write(
        tmp_path / "news.csv",
        """
id,published_at,source,title,body,symbols,topic,true_sentiment
sim-2,2025-01-06T10:05:00Z,sim,Acme beats estimates,,AAPL|MSFT,earnings,0.6
sim-1,2025-01-06T10:00:00Z,sim,Exchange hacked,Funds lost,BTCUSDT,security_breach,-0.9
sim-3,2025-01-06T10:10:00Z,sim,Out of range,,AAPL,earnings,1.5
sim-4,2025-01-06T10:15:00+02:00,sim,Offset time,,AAPL,earnings,
sim-5,2025-01-06T10:20:00Z,sim,Bad value,,AAPL,earnings,high
""",
    )
    load = read_news_csv(path)
    assert load.format == "sim"
    assert [i.id for i in load.items] == ["sim-4", "sim-1", "sim-2"]
    assert load.items[0].published_at == datetime(2025, 1, 6, 8, 15, tzinfo=UTC)
    assert load.items[2].symbols == ("AAPL", "MSFT") and load.items[2].true_sentiment == 0.6
    assert load.rejected == {"out_of_range": 1, "bad_true_sentiment": 1}
    window = list(
        iter_news(
            load, datetime(2025, 1, 6, 10, 0, tzinfo=UTC), datetime(2025, 1, 6, 10, 5, tzinfo=UTC)
        )
    )
    assert [i.id for i in window] == ["sim-1"]
    assert load.summary()["rejected"] == {"out_of_range": 1, "bad_true_sentiment": 1}


def test_unknown_layout_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "when,what\n2025-01-01,hello\n")
    with pytest.raises(InputError, match="fit no news layout"):
        read_news_csv(path)
    with pytest.raises(FileNotFoundError):
        read_news_csv(tmp_path / "missing.csv")


def test_real_replay_files(shared_data: Path) -> None:
    crypto = read_news_csv(shared_data / "news_crypto_cryptonews" / "crypto_news.csv")
    assert (crypto.n_rows, len(crypto.items), sum(crypto.rejected.values())) == (6002, 6002, 0)
    assert crypto.items[0].published_at == datetime(2021, 10, 12, 20, 0, tzinfo=UTC)
    assert crypto.items[-1].published_at == datetime(2022, 7, 5, 4, 24, tzinfo=UTC)
    assert len({i.id for i in crypto.items}) == 6002
    tweets = read_news_csv(shared_data / "news_stocknet_tweets" / "tweets_2015H2.csv")
    assert len(tweets.items) == 11871 and not tweets.rejected
    assert {s for i in tweets.items for s in i.symbols} == {"AAPL", "FB", "AMZN", "GOOG", "MSFT"}
