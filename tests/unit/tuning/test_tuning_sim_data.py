"""A simulator folder end to end through data loading, features, walk-forward and oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.config import LabelSettings, load_settings
from app.errors import InputError
from app.features.spec import default_spec
from app.models.train import ModelSpec, TrainConfig
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.tuning.data_loading import build_windows, load_data
from app.tuning.walkforward import WalkForwardConfig, oracle_lookup, run_walkforward
from app.types import AssetClass

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    result = SimulatedMarket(SimConfig.for_symbols(["BTCUSDT", "ETHUSDT"], days=6)).run()
    write_simulation(result, out)
    return out


def test_simulation_folder_loads_side_inputs_and_oracle(sim_dir):
    data = load_data([sim_dir], None, None, news=False, settings=load_settings())
    assert data.asset_class is AssetClass.CRYPTO and set(data.bars) == {"BTCUSDT", "ETHUSDT"}
    assert data.flow is not None and data.macro is not None and data.oracle is not None
    spec = default_spec(AssetClass.CRYPTO)
    w = build_windows(data, spec, LabelSettings(), lookback=16)
    ends = w.labeled_ends()
    probs = oracle_lookup(w, ends, data.oracle)
    assert probs is not None
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    # the oracle's direction is sign(mu): it must beat a coin on the simulator's own returns
    from app.labels import dacc

    assert dacc(probs[:, 0], probs[:, 1], w.r[ends]) > 0.53


def test_walkforward_on_simulation_reports_oracle_beside_model(sim_dir):
    data = load_data([sim_dir], ["BTCUSDT"], None, news=False, settings=load_settings())
    spec = default_spec(AssetClass.CRYPTO)
    w = build_windows(data, spec, LabelSettings(), lookback=12)
    cfg = WalkForwardConfig(
        asset_class=AssetClass.CRYPTO,
        spec=ModelSpec(lookback=12, d_model=16, n_layers=1, n_heads=2),
        train=TrainConfig(max_epochs=1, max_windows_per_epoch=1500),
        n_folds=2,
        device="cpu",
        baselines=("majority", "logreg"),
    )
    result = run_walkforward(w, cfg, oracle=data.oracle, bars=data.bars)
    assert "oracle" in result.pooled
    # the event-driven backtest (risk engine, stops, fees) ran for the model and the oracle
    assert set(result.backtest) == {"model", "oracle"}
    for outcome in result.folds:
        assert outcome.backtest["model"]["n_trades"] is not None
    assert result.backtest["model"]["n_trades"] == sum(
        o.backtest["model"]["n_trades"] for o in result.folds
    )
    o, m = result.pooled["oracle"], result.pooled["model"]
    assert o["n_directional"] == m["n_directional"]
    assert m["dacc"] <= o["dacc"] + 3 * m["dacc_se"]  # beating the oracle would be a leak


def test_too_few_bars_and_unknown_symbol_are_clear_errors(sim_dir):
    with pytest.raises(InputError, match=r"symbols \['DOGE'\]: not found"):
        load_data([sim_dir], ["DOGE"], AssetClass.CRYPTO, news=False, settings=load_settings())
    data = load_data([sim_dir], ["BTCUSDT"], None, news=False, settings=load_settings())
    data.bars["BTCUSDT"] = data.bars["BTCUSDT"].iloc[:150]
    with pytest.raises(InputError, match=r"too few bars: \{'BTCUSDT': 150\}"):
        build_windows(data, default_spec(AssetClass.CRYPTO), LabelSettings(), lookback=60)


def test_store_source_reads_bars_and_side_inputs(tmp_path):
    from app.store import open_store
    from app.tuning.data_loading import load_store
    from tests.builders import bars_frame

    url = f"duckdb:///{tmp_path}/store.db"
    store = open_store(url)
    try:
        assert store.write_bars(bars_frame(400, symbol="AAA")) == 400
        assert store.write_bars(bars_frame(300, symbol="BBB", seed=2)) == 300
    finally:
        store.close()
    data = load_store(url, ["AAA", "BBB"], AssetClass.CRYPTO, settings=load_settings())
    assert {s: len(f) for s, f in data.bars.items()} == {"AAA": 400, "BBB": 300}
    assert data.news is None and data.source == f"store:{url}"
    with pytest.raises(InputError, match="symbol='ZZZ': no bars in store"):
        load_store(url, ["ZZZ"], AssetClass.CRYPTO, settings=load_settings())


def test_news_impact_columns_are_fitted_on_the_training_window_only(sim_dir):
    from app.text.impact import IMPACT_COLUMNS
    from app.tuning.splits import fold_times
    from app.tuning.walkforward import fill_news_impact, folds_for

    data = load_data([sim_dir], None, None, news=True, settings=load_settings())
    assert data.news_embeddings is not None and len(data.news_embeddings) == len(data.news)
    w = build_windows(data, default_spec(AssetClass.CRYPTO), LabelSettings(), lookback=12)
    names = list(w.series[0].feature_names)
    cols = [names.index(c) for c in IMPACT_COLUMNS]
    assert cols == list(range(len(names) - len(cols), len(names)))  # appended, zero until a fold
    assert not w.X[:, cols].any()
    cfg = WalkForwardConfig(asset_class=AssetClass.CRYPTO, n_folds=2, device="cpu")
    folds, grid = folds_for(w, cfg)
    before = w.X.copy()
    ft = fold_times(folds[-1], grid)
    impact = fill_news_impact(w, ft.train)
    expected = sum(
        int(
            np.sum(
                np.isfinite(s.headlines.target)
                & (s.headlines.outcome_ts >= ft.train[0])
                & (s.headlines.outcome_ts < ft.train[1])
            )
        )
        for s in w.series
    )
    assert impact is not None and impact["fitted"] and impact["n_train"] == expected
    others = [i for i in range(len(names)) if i not in cols]
    np.testing.assert_array_equal(w.X[:, others], before[:, others])  # nothing else moves
    assert w.X[:, cols].any()
