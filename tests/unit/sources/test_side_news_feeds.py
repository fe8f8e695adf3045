"""RSS/Atom and SEC EDGAR feeds -> NewsItem: mapping, UTC publication times, bad entries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.errors import InputError
from app.sources.http import HttpClient, HttpPolicy
from app.sources.news_feeds import fetch_edgar_feed, fetch_feed, parse_edgar_feed, parse_feed
from tests.unit.sources.side_loopback import Answer, LoopbackServer, text_answer

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Example Markets Wire</title><link>https://news.example.com</link>
<description>markets</description>
<item>
  <title>Apple beats estimates &amp; raises dividend</title>
  <link>https://news.example.com/a1</link>
  <guid isPermaLink="false">wire-0001</guid>
  <pubDate>Thu, 01 May 2025 22:15:00 +0200</pubDate>
  <category>earnings</category>
  <description>&lt;p&gt;Revenue &lt;b&gt;rose&lt;/b&gt; 5%.&lt;/p&gt;</description>
</item>
<item>
  <title>Bitcoin slips below $60k</title>
  <link>https://news.example.com/a2</link>
  <pubDate>Fri, 02 May 2025 06:00:00 GMT</pubDate>
</item>
<item>
  <title>An undated rumour</title>
  <link>https://news.example.com/a3</link>
</item>
<item>
  <title>A garbled date</title>
  <link>https://news.example.com/a4</link>
  <pubDate>sometime last week</pubDate>
</item>
<item>
  <link>https://news.example.com/a5</link>
  <pubDate>Fri, 02 May 2025 07:00:00 GMT</pubDate>
</item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Crypto Desk</title>
  <id>urn:example:desk</id>
  <updated>2025-05-02T10:00:00Z</updated>
  <entry>
    <title>Ether ETF flows turn positive</title>
    <id>urn:example:desk:42</id>
    <link href="https://desk.example.com/42"/>
    <updated>2025-05-02T09:30:00-04:00</updated>
    <summary>Net inflows for a third day.</summary>
  </entry>
</feed>"""

EDGAR_COMPANY = b"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<feed xmlns="http://www.w3.org/2005/Atom">
<author><name>Webmaster</name><email>webmaster@sec.gov</email></author>
<company-info>
<cik>0000320193</cik>
<conformed-name>Apple Inc.</conformed-name>
</company-info>
<id>https://www.sec.gov/cgi-bin/browse-edgar?action=getcompany&amp;CIK=0000320193</id>
<title>Apple Inc.  (0000320193)</title>
<updated>2025-05-03T10:11:12-04:00</updated>
<entry>
<category label="form type" scheme="https://www.sec.gov/" term="8-K"/>
<content type="text/xml">
<accession-number>0000320193-25-000055</accession-number>
<filing-date>2025-05-01</filing-date>
<filing-href>https://www.sec.gov/Archives/edgar/data/320193/000032019325000055/0000320193-25-000055-index.htm</filing-href>
<filing-type>8-K</filing-type>
<form-name>Current report</form-name>
<items-desc>items 2.02 and 9.01</items-desc>
</content>
<id>urn:tag:sec.gov,2008:accession-number=0000320193-25-000055</id>
<link href="https://www.sec.gov/Archives/edgar/data/320193/000032019325000055/0000320193-25-000055-index.htm" rel="alternate" type="text/html"/>
<summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2025-05-01 &lt;b&gt;AccNo:&lt;/b&gt; 0000320193-25-000055</summary>
<title>8-K  - Current report</title>
<updated>2025-05-01T16:30:47-04:00</updated>
</entry>
<entry>
<category label="form type" scheme="https://www.sec.gov/" term="10-Q"/>
<id>urn:tag:sec.gov,2008:accession-number=0000320193-25-000057</id>
<link href="https://www.sec.gov/Archives/edgar/data/320193/000032019325000057/0000320193-25-000057-index.htm" rel="alternate" type="text/html"/>
<title>10-Q  - Quarterly report [Sections 13 or 15(d)]</title>
</entry>
</feed>"""  # noqa: E501 - EDGAR's own long lines

EDGAR_CURRENT = b"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Latest Filings - Fri, 02 May 2025 10:00:00 EDT</title>
<id>https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent</id>
<updated>2025-05-02T10:00:00-04:00</updated>
<entry>
<title>4 - MSFT CORP (0000789019) (Issuer)</title>
<link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/789019/000078901925000011/0000789019-25-000011-index.htm"/>
<summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2025-05-02</summary>
<updated>2025-05-02T09:58:01-04:00</updated>
<category scheme="https://www.sec.gov/" label="form type" term="4"/>
<id>urn:tag:sec.gov,2008:accession-number=0000789019-25-000011</id>
</entry>
</feed>"""


def test_rss_items_map_fields_and_convert_times_to_utc():
    batch = parse_feed(RSS, where="mem://rss", symbols=("AAPL",))
    assert batch.rows_read == 5
    assert dict(batch.rejected) == {"missing_ts": 1, "bad_ts": 1, "empty_text": 1}
    first, second = batch.items
    assert first.id == "rss:Example Markets Wire:wire-0001"
    assert first.published_at == datetime(2025, 5, 1, 20, 15, tzinfo=UTC)  # +0200 -> UTC
    assert first.title == "Apple beats estimates & raises dividend"
    assert first.body == "Revenue rose 5%."  # HTML dropped
    assert first.source == "Example Markets Wire"
    assert first.topic == "earnings"
    assert first.url == "https://news.example.com/a1"
    assert first.symbols == ("AAPL",)
    assert second.id == "rss:https://news.example.com/a2"  # no guid: the link
    assert second.published_at == datetime(2025, 5, 2, 6, 0, tzinfo=UTC)


def test_atom_entry_uses_updated_when_no_published():
    batch = parse_feed(ATOM, where="mem://atom", source="desk")
    [item] = batch.items
    assert item.published_at == datetime(2025, 5, 2, 13, 30, tzinfo=UTC)
    assert (item.id, item.source, item.body) == (
        "rss:urn:example:desk:42",
        "desk",
        "Net inflows for a third day.",
    )


def test_a_document_that_is_no_feed_is_an_input_error():
    with pytest.raises(InputError, match="mem://page: not an RSS/Atom feed"):
        parse_feed(b"<html><body>maintenance</body></html>", where="mem://page")


def test_edgar_company_feed_title_is_form_plus_company():
    batch = parse_edgar_feed(EDGAR_COMPANY, where="mem://edgar", symbols=("AAPL",))
    assert batch.rows_read == 2 and dict(batch.rejected) == {"missing_ts": 1}
    [item] = batch.items
    assert item.id == "edgar:0000320193-25-000055"
    assert item.title == "8-K Apple Inc.: Current report"
    assert item.published_at == datetime(2025, 5, 1, 20, 30, 47, tzinfo=UTC)  # EDT -> UTC
    assert item.body.startswith("items 2.02 and 9.01; Filed: 2025-05-01")
    assert item.source == "sec_edgar" and item.topic == "filing_8-K"
    assert item.symbols == ("AAPL",)
    assert item.url.endswith("0000320193-25-000055-index.htm")


def test_edgar_latest_filings_feed_takes_the_company_from_each_title():
    [item] = parse_edgar_feed(EDGAR_CURRENT, where="mem://current").items
    assert item.title == "4 MSFT CORP"
    assert item.id == "edgar:0000789019-25-000011"
    assert item.published_at == datetime(2025, 5, 2, 13, 58, 1, tzinfo=UTC)


def test_feeds_are_fetched_over_http_with_the_configured_user_agent():
    with LoopbackServer() as server:
        server.route("/rss.xml", Answer(503), text_answer(RSS, "application/rss+xml"))
        server.route("/edgar", text_answer(EDGAR_COMPANY, "application/atom+xml"))
        policy = HttpPolicy(timeout_s=2, retries=2, backoff_s=0)
        with HttpClient(policy, user_agent="Research Desk desk@example.org") as http:
            rss = fetch_feed(http, f"{server.url}/rss.xml")
            edgar = fetch_edgar_feed(http, f"{server.url}/edgar?action=getcompany&CIK=320193")
        assert len(rss.items) == 2 and rss.source == f"{server.url}/rss.xml"
        assert [i.id for i in edgar.items] == ["edgar:0000320193-25-000055"]
        assert len(server.hits("/rss.xml")) == 2  # one 503, one retry
        agent = server.hits("/edgar")[0].headers["User-Agent"]
        assert agent == "Research Desk desk@example.org"
        assert server.hits("/edgar")[0].query == {"action": ["getcompany"], "CIK": ["320193"]}
