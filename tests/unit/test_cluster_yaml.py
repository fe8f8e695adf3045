"""cluster.yaml is valid for `ray up` (Ray's schema and config preparation, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ray.autoscaler
import yaml

from tests.conftest import REPO_ROOT


def _config() -> dict:
    return yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_matches_ray_schema() -> None:
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.Draft7Validator(schema).validate(_config())


def test_cluster_yaml_survives_ray_config_preparation() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(_config())
    validate_config(prepared)
    workers = prepared["available_node_types"]["gpu_worker"]
    assert workers["node_config"]["InstanceType"].startswith("g")
    assert prepared["head_node_type"] == "head"
