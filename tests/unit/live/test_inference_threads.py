"""The live process's torch threads: set for the run, restored after, 0 leaves torch alone."""

from __future__ import annotations

import pytest
import torch

from app.config import ModelSettings
from app.live.model import inference_threads


def test_threads_are_set_for_the_body_and_restored() -> None:
    before = torch.get_num_threads()
    with inference_threads(ModelSettings().inference_threads):
        assert torch.get_num_threads() == 1  # the default: one thread per live process
    assert torch.get_num_threads() == before
    with inference_threads(0):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="inference_threads=-1"):
        with inference_threads(-1):
            pass
