"""Shared pieces for the sentiment tests: the packaged MiniLM (loaded once per process) and a
tiny randomly initialised BERT classifier written to disk (no download)."""

from __future__ import annotations

import functools
from pathlib import Path

from app.text.sentiment import SentimentModel

TINY_VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] the a company shares stock profit loss rose fell record "
    "high low bitcoin apple hack sec sues launch new product earnings merger fed rates up down "
    "sales net strong weak beat miss , . $"
).split()


@functools.cache
def minilm() -> SentimentModel:
    """The packaged all-MiniLM-L6-v2 with the zero-shot head; one load per test process."""
    return SentimentModel.load(head="zero-shot", device="cpu")


def write_tiny_classifier(
    folder: Path,
    id2label: dict[int, str] | None = None,
    seed: int = 0,
    initializer_range: float = 0.5,
) -> Path:
    """A 2-layer, 32-wide BertForSequenceClassification + WordPiece tokenizer in ``folder``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    id2label = id2label or {0: "positive", 1: "negative", 2: "neutral"}
    folder.mkdir(parents=True, exist_ok=True)
    # transformers 5 ignores ``vocab_file=``: pass the vocabulary itself, or every word is [UNK]
    vocab = {word: i for i, word in enumerate(TINY_VOCAB)}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        # default 0.5, wide random weights: different texts get clearly different scores
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
