"""serve_config.yaml is a valid `serve deploy` file for the signal app (offline: Ray's own
ServeDeploySchema) whose import path resolves to the app builder: called with the config's
`args` alone it builds the Application (not deployed); bad args name the field."""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from tests.conftest import REPO_ROOT


def _raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())


def _app():  # type: ignore[no-untyped-def]
    (app,) = ServeDeploySchema.model_validate(_raw()).applications
    return app


def _builder_module(import_path: str) -> str:
    module, _, attr = import_path.partition(":")
    assert module and attr, f"import_path={import_path!r}: expected module:attribute"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not in this checkout yet (the live worker's Serve graph)")
    return module


def test_serve_config_matches_serve_schema() -> None:
    app = _app()
    assert app.name == "signal" and app.route_prefix == "/"
    raw = _raw()
    assert raw["http_options"]["host"] == "127.0.0.1", "the API is reached over an ssh tunnel"


def test_serve_config_pins_the_ingress_to_the_head_of_both_clusters() -> None:
    pinned = {
        d.name: d.ray_actor_options.resources for d in _app().deployments if d.ray_actor_options
    }
    assert set(pinned) == {"LiveIngress", "RiskDeployment", "ModelDeployment"}
    for name in ("cluster.yaml", "cluster-gcp.yaml"):
        cfg = yaml.safe_load((REPO_ROOT / name).read_text())
        head = cfg["available_node_types"][cfg["head_node_type"]]["resources"]
        for resources in pinned.values():
            for key in resources:
                assert head.get(key, 0) >= 1, f"{name}: head lacks resource {key!r}"


def test_import_path_resolves_to_a_callable_and_names_real_deployments() -> None:
    app = _app()
    module = importlib.import_module(_builder_module(app.import_path))
    builder = getattr(module, app.import_path.partition(":")[2])
    assert callable(builder), f"{app.import_path} is not callable"
    for deployment in app.deployments:
        assert hasattr(module, deployment.name), f"{module.__name__} has no {deployment.name}"


def _builder():  # type: ignore[no-untyped-def]
    app = _app()
    module = importlib.import_module(_builder_module(app.import_path))
    return getattr(module, app.import_path.partition(":")[2]), app


def test_builder_accepts_serve_args_alone(tmp_path, monkeypatch) -> None:
    from ray.serve import Application

    from tests.unit.live.session_builders import save_promoted, sim_bars, tiny_model

    builder, app = _builder()
    inspect.signature(builder).bind(app.args)  # TypeError when more is required
    bars, _ = sim_bars(days=1)
    registry = save_promoted(tmp_path / "registry", tiny_model(bars))
    monkeypatch.setenv("APP_REGISTRY_DIR", str(registry))
    monkeypatch.setenv("APP_API__KEYS", '["operate-key-for-the-test"]')
    args = {**app.args, "state_dir": str(tmp_path / "state")}
    built = builder(args)
    assert isinstance(built, Application)
    assert isinstance(builder({**args, "tickers": ["BTCUSDT"]}), Application)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"model_replicas": 0}, "model_replicas=0"),
        ({"calendar": "bonds"}, "calendar='bonds'"),
        ({"replicas": 2}, "replicas=2"),
        ({"state_dir": ""}, "state_dir=''"),
    ],
)
def test_bad_serve_args_name_the_field(change, named) -> None:
    from app.errors import InputError
    from app.serve.graph import parse_args

    _, app = _builder()
    parse_args(app.args)  # the shipped args parse
    with pytest.raises(InputError, match=named.replace("(", r"\(")):
        parse_args({**app.args, **change})
