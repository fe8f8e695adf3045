"""Fine-tuning: settings checks, the validation split, batching, and a full train → save →
load round trip on a tiny random BERT (the real MiniLM run is measured in docs/SENTIMENT.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from app.cli.main import main
from app.config import SentimentSettings
from app.errors import InputError
from app.models.text_datasets import read_labelled_csv
from app.models.text_finetune import (
    FinetuneConfig,
    finetune_classifier,
    length_batches,
    validation_mask,
)
from app.text.sentiment import SentimentModel
from tests.unit.text.sentiment_helpers import write_tiny_classifier

WORDS = {
    "positive": ["rose", "record", "high", "profit", "beat", "strong", "up"],
    "negative": ["fell", "loss", "low", "miss", "weak", "down", "hack"],
    "neutral": ["the", "company", "shares", "stock", "sales", "new", "product"],
}


def _write_csv(path: Path, n_per_class: int = 40, seed: int = 0) -> Path:
    """Sentences whose label is carried by the words: a model that trains must learn it."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, words in WORDS.items():
        for _ in range(n_per_class):
            picked = rng.choice(words, size=3, replace=False).tolist()
            rows.append({"sentence": "the company " + " ".join(picked), "label": label})
    rng.shuffle(rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["sentence", "label"])
        writer.writeheader()
        writer.writerows(rows)
        fh.write(",positive\n")  # a bad row (no text): rejected and counted, the rest kept
    return path


def test_config_refuses_bad_values_by_name():
    with pytest.raises(InputError, match="lr=0"):
        FinetuneConfig(lr=0)
    with pytest.raises(InputError, match="epochs=0"):
        FinetuneConfig(epochs=0)
    with pytest.raises(InputError, match="validation_fraction=1"):
        FinetuneConfig(validation_fraction=1)


def test_validation_mask_is_stratified_and_fixed_by_seed():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    mask = validation_mask(labels, 0.1, seed=3)
    assert [int(mask[labels == k].sum()) for k in (0, 1, 2)] == [5, 3, 2]
    assert np.array_equal(mask, validation_mask(labels, 0.1, seed=3))
    assert not np.array_equal(mask, validation_mask(labels, 0.1, seed=4))


def test_length_batches_cover_every_row_once_and_group_lengths():
    lengths = np.arange(100, dtype=float)
    batches = length_batches(lengths, 10, np.random.default_rng(0))
    flat = np.sort(np.concatenate(batches))
    assert np.array_equal(flat, np.arange(100))
    assert max(np.ptp(lengths[b]) for b in batches) <= 15  # similar lengths share a batch


def test_finetune_learns_and_loads_as_a_classifier(tmp_path):
    base = write_tiny_classifier(tmp_path / "base", initializer_range=0.02)
    data = read_labelled_csv(_write_csv(tmp_path / "train.csv"))
    assert len(data) == 120 and sum(data.rejected.values()) == 1
    cfg = FinetuneConfig(epochs=10, lr=5e-3, batch_size=16, validation_fraction=0.25, device="cpu")
    info = finetune_classifier(data, tmp_path / "out", base=str(base), config=cfg, log=lambda _: 0)
    assert info["n_train"] == 90 and info["n_validation"] == 30
    assert info["val_accuracy"] >= 0.9, info["history"]
    best = max(info["history"], key=lambda h: (h["val_accuracy"], -h["val_loss"]))
    assert info["best_epoch"] == best["epoch"]
    saved = json.loads((tmp_path / "out" / "finetune.json").read_text())
    assert saved["classes"] == ["negative", "neutral", "positive"]

    model = SentimentModel.load(SentimentSettings(model=str(tmp_path / "out")), device="cpu")
    assert model.kind == "classifier"
    scores = model.score(
        ["the company rose record high", "the company fell loss weak", "the company shares"]
    )
    assert scores[0] > 0.5 and scores[1] < -0.5 and abs(scores[2]) < 0.5


def test_finetune_refuses_too_few_rows(tmp_path):
    base = write_tiny_classifier(tmp_path / "base")
    path = tmp_path / "few.csv"
    path.write_text("sentence,label\nshares rose,positive\nshares fell,negative\n")
    with pytest.raises(InputError, match="2 usable rows"):
        finetune_classifier(read_labelled_csv(path), tmp_path / "o", base=str(base))


def test_cli_writes_a_version_under_the_registry(tmp_path, capsys):
    base = write_tiny_classifier(tmp_path / "base")
    data = _write_csv(tmp_path / "train.csv", n_per_class=10)
    code = main(
        [
            "sentiment-finetune",
            "--data",
            str(data),
            "--registry",
            str(tmp_path / "reg"),
            "--base",
            str(base),
            "--epochs",
            "1",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    folder = Path(summary["model"])
    assert folder.parent == tmp_path / "reg" / "sentiment_models"
    assert (folder / "config.json").is_file() and (folder / "finetune.json").is_file()
    assert summary["use"] == f"APP_SENTIMENT__MODEL={folder}"
    assert summary["rejected"] == {"train.csv:empty_text": 1}  # counted per file, row kept out


def test_cli_bad_value_exits_2_naming_it(tmp_path, capsys):
    data = _write_csv(tmp_path / "train.csv", n_per_class=5)
    code = main(["sentiment-finetune", "--data", str(data), "--lr", "-1"])
    assert code == 2
    assert "lr=-1" in capsys.readouterr().err
