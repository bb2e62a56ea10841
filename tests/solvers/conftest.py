"""Shared set-up of the solver tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The training runs here are tiny: one intra-op thread is faster, and far faster on a
    busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
