"""``retrain_if_better`` on a small simulator folder with the quick preset (no Ray): the first
candidate is promoted (nothing served), one that does not beat the served version is registered
with both figures and not promoted; the ``--retrain-every`` hook (its schedule, the pending bars
written first, a caller's promotion, the Serve worker's market time from the feed's stats), the
``[retrain]`` settings and the duration parser."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from app.config import RetrainSettings, load_settings
from app.errors import InputError
from app.models.registry import list_versions, promoted_version
from app.pipeline.retrain import RetrainOptions, RetrainResult, retrain_if_better, retrain_options
from app.pipeline.retrain_hook import RetrainHook, parse_duration
from app.pipeline.walkforward import WalkForwardOptions, load_walkforward_data
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.store import DuckDBStore
from app.tuning.walkforward import BASELINES
from app.types import AssetClass
from app.worker_serve import bar_close_time

TINY = dict(quick=True, folds=2, max_epochs=1, max_windows=400, baselines=("majority",))


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = SimulatedMarket(SimConfig.for_symbols(["BTCUSDT"], days=4, seed=5)).run()
    return write_simulation(result, tmp_path_factory.mktemp("retrain") / "sim")


def _data(settings, sim: Path):  # noqa: ANN001, ANN202
    return load_walkforward_data(settings, paths=[sim], news=False, news_impact=False)


def test_first_candidate_promoted_then_one_not_better_is_kept_out(tmp_path, sim) -> None:
    registry = tmp_path / "registry"
    settings = load_settings(registry_dir=registry)
    data = _data(settings, sim)
    first = retrain_if_better(
        settings, data, tmp_path / "r1", options=RetrainOptions(WalkForwardOptions(**TINY))
    )
    assert first.promoted and first.serving is None and first.candidate is not None
    assert first.reason == "no version was served"
    assert promoted_version(registry) == first.candidate
    assert (tmp_path / "r1" / "report.json").is_file()

    time.sleep(1.1)  # version names carry a UTC second stamp
    strict = RetrainOptions(WalkForwardOptions(**TINY, seed=1), min_gain=1.0)  # dacc <= 1
    second = retrain_if_better(settings, data, tmp_path / "r2", options=strict)
    assert second.serving == first.candidate
    assert not second.promoted and "does not beat" in second.reason
    assert promoted_version(registry) == first.candidate  # the served version stays
    assert second.candidate_score is not None and second.serving_score is not None
    assert second.folds == (1,) and second.n_windows > 10
    entry = {v.version: v for v in list_versions(registry)}[second.candidate]
    rec = entry.metrics["retrain"]  # both figures in the candidate's registry entry
    assert rec["candidate"] == second.candidate_score and rec["serving"] == second.serving_score
    assert rec["serving_version"] == first.candidate and rec["better"] is False
    assert "promoted" not in rec  # the promoted pointer says what is served
    assert json.loads(json.dumps(second.to_dict()))["promoted"] is False


def test_options_refuse_bad_values() -> None:
    with pytest.raises(InputError, match="compare_folds=0"):
        RetrainOptions(compare_folds=0)
    with pytest.raises(InputError, match="metric='sharpe'"):
        RetrainOptions(metric="sharpe")
    with pytest.raises(InputError, match="min_gain=-0.1"):
        RetrainOptions(min_gain=-0.1)


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("6h", 21600), ("1d", 86400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["6", "6x", "-1h", "0m", "h", ""])
def test_bad_durations_name_the_flag(text: str) -> None:
    with pytest.raises(InputError, match="--retrain-every"):
        parse_duration(text)


def test_the_hook_starts_one_retrain_per_period_on_the_stores_latest_bars(tmp_path, sim) -> None:
    settings = load_settings(registry_dir=tmp_path / "registry")
    store = DuckDBStore(tmp_path / "store.db")
    bars = _data(settings, sim).bars["BTCUSDT"].copy()
    store.write_bars(bars)
    seen: list[tuple[int, Path]] = []

    def job(settings, data, out, options, promote) -> RetrainResult:  # noqa: ANN001 - the seam
        assert promote is True  # no promote callable: the retrain promotes in the registry
        seen.append((len(data.bars["BTCUSDT"]), out))
        return RetrainResult(None, None, options.metric, None, None, False, "x", (), 0, out)

    late = bars.iloc[-5:].assign(
        ts=bars["ts"].iloc[-1] + pd.to_timedelta([5, 10, 15, 20, 25], "min")
    )
    pending = [late]  # bars a feed holds back until its next batch write

    def flush() -> None:
        while pending:
            store.write_bars(pending.pop())

    hook = RetrainHook(
        3600, settings=settings, store=store, symbols=["BTCUSDT"],
        asset_class=AssetClass.CRYPTO, out=tmp_path / "retrain", run=job, before=flush,
    )  # fmt: skip
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    assert not hook.tick(t0)  # the first tick only sets the schedule
    assert not hook.tick(t0 + timedelta(minutes=59))
    assert hook.tick(t0 + timedelta(hours=1))
    hook.close(timeout_s=60)
    assert not hook.tick(t0 + timedelta(hours=1, minutes=30))
    assert hook.tick(t0 + timedelta(hours=2, minutes=5))
    hook.close(timeout_s=60)
    store.close()
    assert hook.errors == []
    # every stored bar, from the store, the pending ones written before the first read
    assert [n for n, _ in seen] == [len(bars) + 5, len(bars) + 5]
    assert [o.name for _, o in seen] == ["retrain-001", "retrain-002"]
    runs = hook.summary()["runs"]
    assert [r["at"] for r in runs] == [  # type: ignore[index]
        (t0 + timedelta(hours=1)).isoformat(),
        (t0 + timedelta(hours=2, minutes=5)).isoformat(),
    ]


def _better(settings, data, out, options, promote) -> RetrainResult:  # noqa: ANN001
    assert promote is False  # a promote callable: the caller promotes
    return RetrainResult("v2", "v1", "dacc", 0.6, 0.4, False, "better", (1,), 50, out, True)


@pytest.mark.parametrize("fails", [False, True])
def test_a_better_candidate_is_promoted_by_the_callers_promote(tmp_path, sim, fails) -> None:
    settings = load_settings(registry_dir=tmp_path / "registry")
    store = DuckDBStore(tmp_path / "store.db")
    store.write_bars(_data(settings, sim).bars["BTCUSDT"])
    promoted: list[str] = []

    def promote(version: str) -> None:
        if fails:
            raise RuntimeError("the ingress is gone")
        promoted.append(version)

    hook = RetrainHook(
        60, settings=settings, store=store, symbols=["BTCUSDT"], asset_class=AssetClass.CRYPTO,
        out=tmp_path / "retrain", run=_better, promote=promote,
    )  # fmt: skip
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    hook.tick(t0)
    assert hook.tick(t0 + timedelta(minutes=1))
    hook.close(timeout_s=60)
    store.close()
    (run,) = hook.summary()["runs"]  # type: ignore[misc]
    assert run["better"] and run["candidate"] == "v2"
    assert run["promoted"] is (not fails) and promoted == ([] if fails else ["v2"])
    assert hook.errors == (
        ["retrain retrain-001: promoting v2: the ingress is gone"] if fails else []
    )


def test_a_failed_write_of_the_pending_bars_starts_no_retrain(tmp_path) -> None:
    def broken() -> None:
        raise OSError("disk full")

    hook = RetrainHook(
        60, settings=load_settings(), store=DuckDBStore(tmp_path / "s.db"), symbols=["BTCUSDT"],
        asset_class=AssetClass.CRYPTO, out=tmp_path, run=_better, before=broken,
    )  # fmt: skip
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    hook.tick(t0)
    assert not hook.tick(t0 + timedelta(minutes=1)) and not hook.running
    assert hook.errors == ["retrain retrain-001: writing the pending bars: disk full"]


def test_the_retrain_settings_become_options() -> None:
    default = retrain_options(load_settings(), lookback=6)
    assert default.walkforward.lookback == 6  # the served version's: both score the same windows
    assert default.walkforward.baselines == BASELINES and not default.walkforward.quick
    assert (default.compare_folds, default.metric, default.min_gain) == (1, "dacc", 0.0)
    r = RetrainSettings(quick=True, folds=2, max_epochs=1, max_windows=400, lookback=8,
                        baselines=("majority",), seed=3, compare_folds=2, metric="accuracy",
                        min_gain=0.01)  # fmt: skip
    got = retrain_options(load_settings(retrain=r), lookback=6)
    wf = got.walkforward
    assert (wf.quick, wf.folds, wf.max_epochs, wf.max_windows, wf.lookback, wf.seed) == (
        True, 2, 1, 400, 8, 3
    )  # fmt: skip
    assert wf.baselines == ("majority",)
    assert (got.compare_folds, got.metric, got.min_gain) == (2, "accuracy", 0.01)


def test_the_serve_workers_market_time_is_the_last_bar_every_ticker_has() -> None:
    stats = {
        "last_ts": {"BTCUSDT": "2025-01-01T00:10:00+00:00", "ETHUSDT": "2025-01-01T00:05:00+00:00"}
    }
    assert bar_close_time(stats) == datetime(2025, 1, 1, 0, 10, tzinfo=UTC)
    assert bar_close_time({"last_ts": {"BTCUSDT": None}}) is None
    assert bar_close_time({}) is None


def test_the_cli_flag_parses_and_names_itself() -> None:
    import argparse

    from app.cli.live import _every

    assert _every("30m") == 1800
    with pytest.raises(argparse.ArgumentTypeError, match="--retrain-every='soon'"):
        _every("soon")


# ---------------------------------------------------------------- side tables (issue 11)


def _side_store(tmp_path: Path, settings, sim: Path, tables: tuple[str, ...]) -> DuckDBStore:  # noqa: ANN001
    """A store as the live feed leaves it: bars, and the side ``tables`` it writes (the raw
    ``news`` items, no ``sentiment`` rows; ``macro``; ``flow``)."""
    from app.sim.files import load_simulation
    from app.sources.side_batch import flow_frame, macro_frame, news_frame

    result = load_simulation(sim)
    store = DuckDBStore(tmp_path / "store.db")
    store.write_bars(_data(settings, sim).bars["BTCUSDT"])
    frames = {
        "news": news_frame(result.news),
        "macro": macro_frame(result.macro),
        "flow": flow_frame(result.flow),
    }
    for table in tables:
        store.write(table, frames[table])
    return store


def _serve_side_model(settings, sim: Path, out: Path) -> RetrainResult:  # noqa: ANN001
    """A served version trained with the side features and the news-impact columns."""
    data = load_walkforward_data(settings, paths=[sim])  # news scored, with embeddings
    first = retrain_if_better(
        settings, data, out, options=RetrainOptions(WalkForwardOptions(**TINY))
    )
    assert first.promoted and data.news is not None and data.macro is not None
    return first


def _serve_it_reversed(registry: Path, version: str) -> str:
    """``version`` with its UP and DOWN outputs swapped, promoted: the same columns, a poor
    served model (its directional calls reversed), so a retrain's candidate beats it."""
    import dataclasses

    import torch

    from app.labels import DOWN, UP
    from app.models.registry import load_version, promote, save_version

    bundle = load_version(registry, version)
    order = list(range(3))
    order[UP], order[DOWN] = DOWN, UP
    with torch.no_grad():
        for name, param in bundle.model.named_parameters():
            if name.split(".")[0] in ("head", "skip"):  # the (3, ...) output layers
                param.copy_(param[order])
    bias = tuple(float(bundle.logit_bias[i]) for i in order)
    reversed_ = save_version(registry, dataclasses.replace(bundle, logit_bias=bias))
    promote(registry, reversed_)
    return reversed_


def _hook_run(tmp_path: Path, settings, store: DuckDBStore) -> RetrainResult:  # noqa: ANN001
    hook = RetrainHook(
        60, settings=settings, store=store, symbols=["BTCUSDT"], asset_class=AssetClass.CRYPTO,
        out=tmp_path / "retrain", options=RetrainOptions(WalkForwardOptions(**TINY, seed=1)),
    )  # fmt: skip
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    hook.tick(t0)
    assert hook.tick(t0 + timedelta(minutes=1))
    hook.close(timeout_s=600)
    store.close()
    assert hook.errors == []
    ((_, result),) = hook.results
    return result


def test_the_retrain_reads_the_stores_side_tables_with_the_served_spec(tmp_path, sim) -> None:
    from app.models.registry import load_version
    from app.text.impact import IMPACT_COLUMNS

    registry = tmp_path / "registry"
    settings = load_settings(registry_dir=registry)
    trained = _serve_side_model(settings, sim, tmp_path / "r1").candidate
    assert trained is not None
    time.sleep(1.1)  # version names carry a UTC second stamp
    served = _serve_it_reversed(registry, trained)
    store = _side_store(tmp_path, settings, sim, ("news", "macro", "flow"))
    time.sleep(1.1)
    run = _hook_run(tmp_path, settings, store)
    # the same columns (side and news-impact ones): the served version is scored and compared
    old, new = load_version(registry, served), load_version(registry, run.candidate)
    assert tuple(new.feature_names) == tuple(old.feature_names)
    assert tuple(new.feature_names[-len(IMPACT_COLUMNS) :]) == IMPACT_COLUMNS
    assert run.serving == served and run.serving_score is not None, run.reason
    assert run.candidate_score > run.serving_score and "beats serving" in run.reason
    # the sim has no DVOL series and no address / print flow: said, not hidden
    assert "the data lacks macro series 'dvol'" in run.reason
    assert "headlines" not in run.reason and "fear_greed" not in run.reason
    assert run.better and run.promoted and promoted_version(registry) == run.candidate
    report = json.loads((tmp_path / "retrain" / "retrain-001" / "report.json").read_text())
    assert report["data"]["news_rows"] > 0 and report["data"]["flow_rows"] > 0
    assert report["data"]["macro_rows"] > 0


def test_a_store_without_the_headlines_the_served_spec_needs_says_so(tmp_path, sim) -> None:
    registry = tmp_path / "registry"
    settings = load_settings(registry_dir=registry)
    served = _serve_side_model(settings, sim, tmp_path / "r1").candidate
    store = _side_store(tmp_path, settings, sim, ("macro", "flow"))  # no news table
    run = _hook_run(tmp_path, settings, store)
    assert run.candidate is None and not run.promoted and not run.better
    assert run.serving == served and promoted_version(registry) == served
    assert f"serving {served} cannot be retrained on this data" in run.reason
    assert "news-impact columns need headlines" in run.reason
    assert "no scored headlines for ['BTCUSDT']" in run.reason
    assert [v.version for v in list_versions(registry)] == [served]  # nothing trained


def test_the_registry_record_says_better_not_promoted_when_the_caller_promotes(
    tmp_path, sim
) -> None:
    registry = tmp_path / "registry"
    settings = load_settings(registry_dir=registry)
    run = retrain_if_better(
        settings, _data(settings, sim), tmp_path / "r1",
        options=RetrainOptions(WalkForwardOptions(**TINY)), promote_candidate=False,
    )  # fmt: skip
    assert run.better and not run.promoted and promoted_version(registry) is None
    rec = {v.version: v for v in list_versions(registry)}[run.candidate].metrics["retrain"]
    assert rec["better"] is True and "promoted" not in rec  # the pointer says what is served


def test_a_promotion_of_another_asset_class_leaves_the_retrain_its_own(tmp_path, sim) -> None:
    import dataclasses

    from app.features.spec import default_spec
    from app.models.registry import load_version, promote, save_version

    registry = tmp_path / "registry"
    settings = load_settings(registry_dir=registry)
    data = _data(settings, sim)  # crypto bars
    first = retrain_if_better(
        settings, data, tmp_path / "r1", options=RetrainOptions(WalkForwardOptions(**TINY))
    )
    stocks = default_spec(AssetClass.STOCKS)  # a spec whose columns its names follow
    bundle = dataclasses.replace(
        load_version(registry, first.candidate),
        feature_spec=stocks.to_dict(),
        feature_names=stocks.feature_names,
    )
    time.sleep(1.1)  # version names carry a UTC second stamp
    served = save_version(registry, bundle)
    promote(registry, served)
    time.sleep(1.1)
    run = retrain_if_better(
        settings, data, tmp_path / "r2", options=RetrainOptions(WalkForwardOptions(**TINY))
    )
    # the crypto retrain is compared with the crypto version its class serves, not with the
    # stocks one promoted last (each class has its own pointer)
    assert run.serving == first.candidate and run.serving_score is not None, run.reason
    assert promoted_version(registry, asset_class="stocks") == served
