"""The Model deployment's logic without Ray: the same signals as the session's own model, one
pass per version, versions by name, and a user_config that refuses unknown keys."""

from __future__ import annotations

import numpy as np
import pytest

from app.live.series import SeriesReplay
from app.serve.deployments import ModelServer, TickerWindow
from tests.unit.live.session_builders import save_promoted, sim_bars, tiny_model


def test_model_server_answers_like_the_model_and_keeps_versions_apart(tmp_path) -> None:
    bars, classes = sim_bars(days=1)
    one, two = tiny_model(bars, "lstm-v1", seed=0), tiny_model(bars, "lstm-v2", seed=1)
    save_promoted(tmp_path, two)
    save_promoted(tmp_path, one)
    closes = [c for c in SeriesReplay(bars, classes, one).closes() if c.windows][:5]
    server = ModelServer(tmp_path)
    server.reconfigure({"version": "lstm-v1"})
    for close in closes:
        want = one.signals(close.ts, close.windows)
        reqs = [TickerWindow(t, close.ts, w, "lstm-v1") for t, w in close.windows.items()]
        reqs += [TickerWindow(t, close.ts, w, "lstm-v2") for t, w in close.windows.items()]
        got = server.predict(reqs)
        n = len(close.windows)
        for sig in got[:n]:
            w = want[sig.ticker]
            assert sig.model_version == "lstm-v1" and sig.action is w.action
            np.testing.assert_allclose(
                [sig.probs.up, sig.probs.down, sig.probs.flat],
                [w.probs.up, w.probs.down, w.probs.flat],
                atol=1e-6,
            )
        assert {s.model_version for s in got[n:]} == {"lstm-v2"}
    with pytest.raises(ValueError, match="unknown keys"):
        server.reconfigure({"versoin": "lstm-v1"})
