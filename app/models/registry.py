"""Model registry: one directory per version, a pointer file for the promoted one.

Layout of ``<registry>/<version>/``:
``weights.pt`` (state dict), ``model.json`` (kind + config), ``feature_spec.json``,
``scaler.json``, ``labels.json`` (label settings), ``calibration.json`` (temperature),
``metrics.json``, ``data.json`` (symbols, feature names, lookback, data range).
``<registry>/PROMOTED`` holds the promoted version's name; the signal service serves it.
Writes go to a temporary directory renamed into place, so a half-written version never shows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from app.errors import InputError
from app.models.bundle import ModelBundle
from app.models.dataset import FeatureScaler
from app.models.factory import build_model

PROMOTED_FILE = "PROMOTED"
_FILES = (
    "weights.pt",
    "model.json",
    "scaler.json",
    "labels.json",
    "calibration.json",
    "metrics.json",
    "data.json",
    "feature_spec.json",
)


@dataclass(frozen=True)
class VersionInfo:
    version: str
    kind: str
    created_at: str
    symbols: tuple[str, ...]
    metrics: dict[str, Any]
    promoted: bool


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def save_version(
    registry_dir: str | Path,
    bundle: ModelBundle,
    *,
    metrics: dict[str, Any] | None = None,
    data_range: dict[str, Any] | None = None,
    version: str | None = None,
) -> str:
    """Store ``bundle`` as a new version; return its name (``<kind>-<UTC stamp>-<hash>``)."""
    root = Path(registry_dir)
    root.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in bundle.model.state_dict().items()}
    if version is None:
        digest = hashlib.sha256()
        for k in sorted(state):
            digest.update(k.encode())
            digest.update(state[k].numpy().tobytes())
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        version = f"{bundle.kind}-{stamp}-{digest.hexdigest()[:8]}"
    final = root / version
    if final.exists():
        raise InputError(f"registry version={version!r} already exists at {final}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    try:
        torch.save(state, tmp / "weights.pt")
        _write_json(
            tmp / "model.json",
            {
                "kind": bundle.kind,
                "config": bundle.model_config,
                "created_at": datetime.now(UTC).isoformat(),
            },
        )
        _write_json(tmp / "scaler.json", bundle.scaler.to_dict())
        _write_json(tmp / "labels.json", bundle.label_settings)
        _write_json(
            tmp / "calibration.json",
            {"temperature": bundle.temperature, "logit_bias": list(bundle.logit_bias)},
        )
        _write_json(tmp / "metrics.json", metrics or bundle.metrics)
        _write_json(tmp / "feature_spec.json", bundle.feature_spec)
        _write_json(
            tmp / "data.json",
            {
                "symbols": list(bundle.symbols),
                "feature_names": list(bundle.feature_names),
                "lookback": bundle.lookback,
                **(data_range or {}),
            },
        )
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return version


def _version_dir(registry_dir: str | Path, version: str) -> Path:
    path = Path(registry_dir) / version
    if not version or "/" in version or version.startswith(".") or not path.is_dir():
        raise InputError(f"registry version={version!r} not found in {registry_dir}")
    missing = [f for f in _FILES if not (path / f).is_file()]
    if missing:
        raise InputError(f"registry version={version!r} is incomplete: missing {missing}")
    return path


def load_version(registry_dir: str | Path, version: str) -> ModelBundle:
    """Rebuild the exact model of ``version``; its predictions match the saved one bit for bit."""
    path = _version_dir(registry_dir, version)
    meta = _read_json(path / "model.json")
    data = _read_json(path / "data.json")
    model = build_model(meta["kind"], meta["config"])
    model.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
    model.eval()
    calibration = _read_json(path / "calibration.json")
    return ModelBundle(
        kind=meta["kind"],
        model_config=meta["config"],
        model=model,
        scaler=FeatureScaler.from_dict(_read_json(path / "scaler.json")),
        temperature=float(calibration["temperature"]),
        logit_bias=tuple(float(b) for b in calibration.get("logit_bias", (0.0, 0.0, 0.0))),
        lookback=int(data["lookback"]),
        feature_names=tuple(data["feature_names"]),
        symbols=tuple(data["symbols"]),
        label_settings=_read_json(path / "labels.json"),
        feature_spec=_read_json(path / "feature_spec.json"),
        metrics=_read_json(path / "metrics.json"),
    )


def promoted_version(registry_dir: str | Path) -> str | None:
    pointer = Path(registry_dir) / PROMOTED_FILE
    return pointer.read_text().strip() or None if pointer.is_file() else None


def promote(registry_dir: str | Path, version: str) -> str:
    """Make ``version`` the served one (atomic pointer swap); return the previous one or ''."""
    _version_dir(registry_dir, version)
    previous = promoted_version(registry_dir) or ""
    pointer = Path(registry_dir) / PROMOTED_FILE
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(version + "\n")
    os.replace(tmp, pointer)
    return previous


def load_promoted(registry_dir: str | Path) -> tuple[str, ModelBundle]:
    version = promoted_version(registry_dir)
    if version is None:
        raise InputError(f"no promoted version in registry {registry_dir}")
    return version, load_version(registry_dir, version)


def list_versions(registry_dir: str | Path) -> list[VersionInfo]:
    """Complete versions, oldest first."""
    root = Path(registry_dir)
    if not root.is_dir():
        return []
    current = promoted_version(root)
    out = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not all((path / f).is_file() for f in _FILES):
            continue
        meta = _read_json(path / "model.json")
        data = _read_json(path / "data.json")
        out.append(
            VersionInfo(
                version=path.name,
                kind=meta["kind"],
                created_at=meta.get("created_at", ""),
                symbols=tuple(data["symbols"]),
                metrics=_read_json(path / "metrics.json"),
                promoted=path.name == current,
            )
        )
    return sorted(out, key=lambda v: (v.created_at, v.version))
