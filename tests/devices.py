"""The devices the core tests run on: the CPU always, CUDA where this machine has it."""

from __future__ import annotations

import pytest
import torch

#: ``pytest.mark.parametrize("device", DEVICES)``: "cpu", and "cuda" on a machine with a GPU.
DEVICES = [pytest.param("cpu", id="cpu"),
           pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                       reason="no CUDA device on this machine"))]
