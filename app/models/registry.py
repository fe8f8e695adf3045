"""Model registry: one folder per version, ``PROMOTED`` pointers per kind of model.

What the registry holds is told apart by ``kind``, each in its own folder of the registry dir:
- ``price``: forecasting models, in the registry folder itself: ``weights.pt`` (state dict),
  ``model.json`` (architecture, i.e. ``ModelBundle.kind``, + config), ``feature_spec.json``,
  ``scaler.json``, ``labels.json`` (label settings), ``calibration.json`` (temperature),
  ``metrics.json``, ``data.json`` (symbols, feature names, lookback, data range);
- ``sentiment``: trained sentiment heads, ``sentiment/<version>/{head.npz, meta.json}``;
- ``text_encoder``: fine-tuned encoders, ``sentiment_models/<version>/`` (a Hugging Face
  folder; used through ``sentiment.model``, never promoted).

The promoted version is the one in use: the signal service serves the promoted price model,
news is scored with the promoted sentiment head. A price model is trained for one asset
class (its feature spec's), so each class has its own pointer, ``PROMOTED.<class>``, beside
``PROMOTED`` (the last promotion of any class: what one-class and older registries read).
Writes go to a temporary folder renamed into place and each pointer is swapped atomically, so
a reader never sees half of either.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from app.errors import InputError
from app.text.heads import CLASSES, LogisticHead
from app.types import AssetClass

if TYPE_CHECKING:
    from app.models.bundle import ModelBundle

# torch (and the model classes built on it) is imported where weights are saved or loaded:
# the readers of pointers and metadata (the Serve ingress, the Risk replica, the execution
# actor, the API) never pay its ~3 s import.

Kind = Literal["price", "sentiment", "text_encoder"]
PROMOTED_FILE = "PROMOTED"
_PRICE_FILES = (
    "weights.pt",
    "model.json",
    "scaler.json",
    "labels.json",
    "calibration.json",
    "metrics.json",
    "data.json",
    "feature_spec.json",
)
# kind -> (folder under the registry dir, files every complete version has)
_LAYOUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "price": ("", _PRICE_FILES),
    "sentiment": ("sentiment", ("head.npz", "meta.json")),
    "text_encoder": ("sentiment_models", ("config.json",)),
}
_LEGACY_POINTER = {"sentiment": "current"}  # read when PROMOTED is absent (older registries)
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --------------------------------------------------------------------------- any kind


def kind_root(registry_dir: str | Path, kind: Kind = "price") -> Path:
    """The folder that holds the versions of ``kind``."""
    if kind not in _LAYOUT:
        raise InputError(f"registry kind={kind!r}: expected one of {sorted(_LAYOUT)}")
    return Path(registry_dir) / _LAYOUT[kind][0]


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def new_version_name(registry_dir: str | Path, data_sha256: str, kind: Kind) -> str:
    """``<UTC stamp>-<data hash[:8]>``, with ``-2``, ``-3``... when ``kind`` already has it."""
    root = kind_root(registry_dir, kind)
    stamp, tag = utc_stamp(), data_sha256[:8] or "nodata"
    version, suffix = f"{stamp}-{tag}", 1
    while (root / version).exists():
        suffix += 1
        version = f"{stamp}-{tag}-{suffix}"
    return version


def version_dir(registry_dir: str | Path, version: str, kind: Kind = "price") -> Path:
    """The folder of a complete ``version`` of ``kind``; InputError naming what is wrong."""
    root = kind_root(registry_dir, kind)
    path = root / version
    if not _VERSION_RE.match(version or "") or not path.is_dir():
        raise InputError(f"registry version={version!r} not found in {root}")
    missing = [f for f in _LAYOUT[kind][1] if not (path / f).is_file()]
    if missing:
        raise InputError(f"registry version={version!r} is incomplete: missing {missing}")
    return path


def versions(registry_dir: str | Path, kind: Kind = "price") -> list[str]:
    """Names of the complete versions of ``kind``, sorted."""
    root = kind_root(registry_dir, kind)
    if not root.is_dir():
        return []
    required = _LAYOUT[kind][1]
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and _VERSION_RE.match(p.name) and all((p / f).is_file() for f in required)
    )


def promoted_version(
    registry_dir: str | Path, kind: Kind = "price", asset_class: AssetClass | str | None = None
) -> str | None:
    """The version of ``kind`` in use, or None; with ``asset_class`` (price models only), the
    one in use for that class: its own pointer, else ``PROMOTED`` when that version is of the
    class (a registry written before the per-class pointers)."""
    root = kind_root(registry_dir, kind)
    if asset_class is not None:
        cls = _asset_class(asset_class, kind)
        own = _read_pointer(root / f"{PROMOTED_FILE}.{cls.value}")
        if own is not None:
            return own
        latest = promoted_version(registry_dir, kind)
        if latest is not None and _class_of(registry_dir, latest) is cls:
            return latest
        return None
    for name in (PROMOTED_FILE, _LEGACY_POINTER.get(kind)):
        if name and (root / name).is_file():
            return _read_pointer(root / name)
    return None


def promoted_versions(registry_dir: str | Path) -> dict[AssetClass, str]:
    """The price version in use for each asset class that has one."""
    found = {c: promoted_version(registry_dir, "price", c) for c in AssetClass}
    return {c: v for c, v in found.items() if v is not None}


def version_asset_class(registry_dir: str | Path, version: str) -> AssetClass | None:
    """The asset class price ``version`` was trained for (its feature spec's; None: unrecorded)."""
    spec = _read_json(version_dir(registry_dir, version) / "feature_spec.json")
    value = spec.get("asset_class") if isinstance(spec, Mapping) else None
    return AssetClass(value) if value else None


def promote(registry_dir: str | Path, version: str, kind: Kind = "price") -> str:
    """Make ``version`` the one in use (atomic pointer swaps: a price version's class pointer,
    then ``PROMOTED``); return the previous one of its class (price) or kind, or ''."""
    version_dir(registry_dir, version, kind)
    root = kind_root(registry_dir, kind)
    cls = version_asset_class(registry_dir, version) if kind == "price" else None
    previous = promoted_version(registry_dir, kind, cls) or ""
    if cls is not None:
        _keep_class_of_latest(registry_dir, root)
        _write_pointer(root / f"{PROMOTED_FILE}.{cls.value}", version)
    _write_pointer(root / PROMOTED_FILE, version)
    return previous


def _keep_class_of_latest(registry_dir: str | Path, root: Path) -> None:
    """Give the version ``PROMOTED`` names its class pointer, if it has none yet (a registry
    from before them): promoting another class must not take its promotion away."""
    latest = promoted_version(registry_dir)
    cls = _class_of(registry_dir, latest) if latest is not None else None
    if cls is not None and not (root / f"{PROMOTED_FILE}.{cls.value}").is_file():
        _write_pointer(root / f"{PROMOTED_FILE}.{cls.value}", latest)


def _class_of(registry_dir: str | Path, version: str) -> AssetClass | None:
    """``version_asset_class``, None when the pointer names no complete version (deleted)."""
    try:
        return version_asset_class(registry_dir, version)
    except InputError:
        return None


def _asset_class(value: AssetClass | str, kind: Kind) -> AssetClass:
    if kind != "price":
        raise InputError(f"registry kind={kind!r}: only price models have a pointer per class")
    try:
        return AssetClass(value)
    except ValueError:
        raise InputError(f"asset_class={value!r}: expected crypto|stocks|forex") from None


def _read_pointer(path: Path) -> str | None:
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def _write_pointer(path: Path, version: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, path)  # a reader sees the old or the new pointer


def write_version(
    registry_dir: str | Path, version: str, kind: Kind, write: Callable[[Path], None]
) -> Path:
    """Run ``write(folder)`` on a temporary folder and rename it to ``version``."""
    root = kind_root(registry_dir, kind)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    if final.exists():
        raise InputError(f"registry version={version!r} already exists at {final}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    try:
        write(tmp)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- sentiment heads


def save_head(
    registry_dir: str | Path,
    head: LogisticHead,
    meta: Mapping[str, Any],
    *,
    make_promoted: bool = True,
) -> str:
    """Store a trained head as a new version (never overwrites one) and promote it."""
    version = new_version_name(registry_dir, str(meta.get("data_sha256", "")), "sentiment")
    full_meta = {"version": version, "classes": list(CLASSES), "dim": head.dim, **meta}

    def write(folder: Path) -> None:
        np.savez(folder / "head.npz", coef=head.coef, intercept=head.intercept)
        (folder / "meta.json").write_text(json.dumps(full_meta, indent=2, default=str), "utf-8")

    write_version(registry_dir, version, "sentiment", write)
    if make_promoted:
        promote(registry_dir, version, "sentiment")
    return version


def load_head(registry_dir: str | Path, version: str | None = None) -> LogisticHead:
    """Load head ``version`` (default: the promoted one)."""
    version = version or promoted_version(registry_dir, "sentiment")
    if version is None:
        raise InputError(
            f"registry={kind_root(registry_dir, 'sentiment')}: no trained sentiment head "
            "(run sentiment-train)"
        )
    folder = version_dir(registry_dir, version, "sentiment")
    arrays = np.load(folder / "head.npz")
    meta = _read_json(folder / "meta.json")
    if list(meta.get("classes", [])) != list(CLASSES):
        raise InputError(f"{folder}/meta.json classes={meta.get('classes')!r}: want {CLASSES}")
    return LogisticHead(
        coef=arrays["coef"], intercept=arrays["intercept"], version=version, meta=meta
    )


# --------------------------------------------------------------------------- price models


@dataclass(frozen=True)
class VersionInfo:
    version: str
    kind: str  # the architecture (ModelBundle.kind): transformer | lstm
    created_at: str
    symbols: tuple[str, ...]
    metrics: dict[str, Any]
    promoted: bool


def save_version(
    registry_dir: str | Path,
    bundle: ModelBundle,
    *,
    metrics: dict[str, Any] | None = None,
    data_range: dict[str, Any] | None = None,
    version: str | None = None,
) -> str:
    """Store ``bundle`` as a new version; return its name (``<kind>-<UTC stamp>-<hash>``)."""
    state = {k: v.detach().cpu() for k, v in bundle.model.state_dict().items()}
    if version is None:
        digest = hashlib.sha256()
        for k in sorted(state):
            digest.update(k.encode())
            digest.update(state[k].numpy().tobytes())
        version = f"{bundle.kind}-{utc_stamp()}-{digest.hexdigest()[:8]}"

    def write(folder: Path) -> None:
        import torch

        torch.save(state, folder / "weights.pt")
        _write_json(
            folder / "model.json",
            {
                "kind": bundle.kind,
                "config": bundle.model_config,
                "created_at": datetime.now(UTC).isoformat(),
            },
        )
        _write_json(folder / "scaler.json", bundle.scaler.to_dict())
        _write_json(folder / "labels.json", bundle.label_settings)
        _write_json(
            folder / "calibration.json",
            {"temperature": bundle.temperature, "logit_bias": list(bundle.logit_bias)},
        )
        _write_json(folder / "metrics.json", metrics or bundle.metrics)
        _write_json(folder / "feature_spec.json", bundle.feature_spec)
        _write_json(
            folder / "data.json",
            {
                "symbols": list(bundle.symbols),
                "feature_names": list(bundle.feature_names),
                "lookback": bundle.lookback,
                **(data_range or {}),
            },
        )

    write_version(registry_dir, version, "price", write)
    return version


def load_version(registry_dir: str | Path, version: str) -> ModelBundle:
    """Rebuild the exact model of ``version``; its predictions match the saved one bit for bit."""
    import torch

    from app.models.bundle import ModelBundle
    from app.models.dataset import FeatureScaler
    from app.models.factory import build_model

    path = version_dir(registry_dir, version)
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


def load_promoted(
    registry_dir: str | Path, asset_class: AssetClass | str | None = None
) -> tuple[str, ModelBundle]:
    """The promoted price version (of ``asset_class``, when given), loaded."""
    version = promoted_version(registry_dir, "price", asset_class)
    if version is None:
        of = f" for asset_class={AssetClass(asset_class).value!r}" if asset_class else ""
        raise InputError(f"no promoted version{of} in registry {registry_dir}")
    return version, load_version(registry_dir, version)


def out_of_sample_start(registry_dir: str | Path, version: str) -> datetime | None:
    """The first bar time of the test window ``version`` was scored on (its walk-forward's last
    fold): the data after it was never seen in training or validation. None when not recorded."""
    data = _read_json(version_dir(registry_dir, version) / "data.json")
    test = data.get("test")
    if not test:
        return None
    return datetime.fromisoformat(str(test[0]))


def list_versions(registry_dir: str | Path) -> list[VersionInfo]:
    """Complete price-model versions, oldest first; ``promoted``: in use for its class."""
    current = set(promoted_versions(registry_dir).values())
    current |= {promoted_version(registry_dir)} - {None}  # a version with no class recorded
    out = []
    for name in versions(registry_dir, "price"):
        path = Path(registry_dir) / name
        meta = _read_json(path / "model.json")
        data = _read_json(path / "data.json")
        out.append(
            VersionInfo(
                version=name,
                kind=meta["kind"],
                created_at=meta.get("created_at", ""),
                symbols=tuple(data["symbols"]),
                metrics=_read_json(path / "metrics.json"),
                promoted=name in current,
            )
        )
    return sorted(out, key=lambda v: (v.created_at, v.version))
