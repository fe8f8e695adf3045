"""cluster.yaml (AWS) and cluster-gcp.yaml are valid for `ray up` (offline: Ray's schema and
config preparation), give every training worker a GPU, install the project as the README does,
and hold no secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml

from tests.conftest import REPO_ROOT

FILES = ("cluster.yaml", "cluster-gcp.yaml")
RAY_VERSION = ray.__version__


def _config(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / name).read_text())


def _workers(cfg: dict) -> dict[str, dict]:
    head = cfg["head_node_type"]
    return {k: v for k, v in cfg["available_node_types"].items() if k != head}


@pytest.mark.parametrize("name", FILES)
def test_matches_ray_schema(name: str) -> None:
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.Draft7Validator(schema).validate(_config(name))


@pytest.mark.parametrize("name", FILES)
def test_survives_ray_config_preparation(name: str) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(_config(name))
    validate_config(prepared)
    assert prepared["head_node_type"] == "head"


@pytest.mark.parametrize("name", FILES)
def test_every_training_worker_declares_one_gpu_and_is_spot(name: str) -> None:
    cfg = _config(name)
    workers = _workers(cfg)
    assert workers, f"{name}: no worker node types"
    for kind, node in workers.items():
        assert node.get("resources", {}).get("GPU", 0) >= 1, f"{name}:{kind}: no GPU declared"
        assert node["min_workers"] <= node["max_workers"], f"{name}:{kind}: min > max"
        nc = node["node_config"]
        if cfg["provider"]["type"] == "aws":
            assert nc["InstanceType"].startswith(("g5.", "g6.")), f"{name}:{kind}"
            assert nc["InstanceMarketOptions"]["MarketType"] == "spot", f"{name}:{kind}"
        else:
            assert nc["guestAccelerators"][0]["acceleratorCount"] >= 1, f"{name}:{kind}"
            assert nc["scheduling"]["onHostMaintenance"] == "TERMINATE", f"{name}:{kind}"
            assert nc["scheduling"]["preemptible"] is True, f"{name}:{kind}"
            assert "install-driver" in " ".join(node["initialization_commands"]), kind
    assert "GPU" not in cfg["available_node_types"]["head"]["resources"]


@pytest.mark.parametrize("name", FILES)
def test_images_are_the_official_ray_images_of_the_installed_version(name: str) -> None:
    docker = _config(name)["docker"]
    assert docker["image"] == f"rayproject/ray:{RAY_VERSION}-py311-gpu"
    assert docker["head_image"].startswith(f"rayproject/ray:{RAY_VERSION}-")
    assert "ray-ml" not in json.dumps(docker)


@pytest.mark.parametrize("name", FILES)
def test_head_runs_questdb_on_a_kept_volume(name: str) -> None:
    head = _config(name)["available_node_types"]["head"]
    init = " ".join(head["initialization_commands"])
    assert re.search(r"docker run .*-v /mnt/questdb:/var/lib/questdb questdb/questdb:\d", init)
    assert "--restart unless-stopped" in init
    text = json.dumps(head["node_config"])
    assert '"DeleteOnTermination": false' in text or '"autoDelete": false' in text


def _readme_torch_pin() -> str:
    match = re.search(r"torch==([0-9][0-9.]*[0-9])", (REPO_ROOT / "README.md").read_text())
    assert match, "README.md names no torch==... pin"
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert f'"torch=={match.group(1)}"' in makefile, "README and Makefile pin different torch"
    return match.group(1)


@pytest.mark.parametrize("name", FILES)
def test_setup_installs_the_package_as_the_readme_does(name: str) -> None:
    cfg = _config(name)
    steps = cfg["setup_commands"]
    torch_at = next(i for i, c in enumerate(steps) if "pip install" in c and "torch" in c)
    assert f'"torch=={_readme_torch_pin()}"' in steps[torch_at]
    assert "-e ." not in steps[torch_at], "torch must be installed in a call of its own"
    project_at = next(i for i, c in enumerate(steps) if re.search(r"pip install .*-e \.$", c))
    assert torch_at < project_at
    assert "cd ~/seed-trader" in steps[project_at]
    # The pinned commit: the synced checkout must be exactly a commit (and .git is synced).
    assert any("git diff --quiet HEAD" in c for c in steps[:torch_at])
    assert cfg["file_mounts"] == {"~/seed-trader": "."}
    assert not any(".git" in p for p in cfg["rsync_exclude"])
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head


SECRET_PATTERNS = (
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # a key-ish name given a literal with letters and digits (a store's secret *name* has none)
    re.compile(
        r"(?i)(secret|password|passwd|key|token)\w*['\"]?\s*[:=]\s*['\"]?"
        r"(?=[^\s'\"]*\d)(?=[^\s'\"]*[A-Za-z])[A-Za-z0-9/+_.-]{8,}"
    ),
    re.compile(r"\b[A-Za-z0-9/+]{40,}={0,2}"),  # long base64-ish literals
    re.compile(r"(?i)(ghp|gho|glpat|xox[abp]|sk)-?[A-Za-z0-9_]{20,}"),
)


def _secret_hits(text: str) -> list[str]:
    return [m.group(0) for p in SECRET_PATTERNS for m in p.finditer(text)]


def test_the_secret_check_catches_a_planted_key() -> None:
    assert _secret_hits("aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert _secret_hits("env: {APP_API__KEY: xq7Hd92kLm}")
    assert _secret_hits("-e BINANCE_SECRET=Zk81mQp0aa")
    assert _secret_hits("api_key: 'abcd1234efgh'")
    assert _secret_hits("--secret=seed-trader-env") == []  # a name in the store is not a secret


@pytest.mark.parametrize("name", FILES)
def test_no_secret_looking_literal(name: str) -> None:
    text = (REPO_ROOT / name).read_text()
    assert _secret_hits(text) == [], f"{name}: secret-looking literal"
    assert "seed-trader.env" in text  # keys come from the provider's secret store at boot
