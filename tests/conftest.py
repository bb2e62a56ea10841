import os
import signal
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


#: torch's global default device during every test: the CPU, or what PINNK_TEST_DEFAULT_DEVICE
#: says (``cuda``: the tests of the DeepXDE bridge as a DeepXDE user on a GPU runs them).
DEFAULT_DEVICE = os.environ.get("PINNK_TEST_DEFAULT_DEVICE", "cpu")


def _pin_default_device():
    torch.set_default_device(None if DEFAULT_DEVICE == "cpu" else DEFAULT_DEVICE)


def pytest_collectstart(collector):
    """The module-level code of every test module (its tensors, networks, cases) runs under the
    pinned default device too: a module collected earlier may have imported DeepXDE."""
    _pin_default_device()


@pytest.fixture(autouse=True)
def _default_device():
    """Every test starts with torch's default device set to ``DEFAULT_DEVICE``. Importing DeepXDE
    (which the interop tests do at collection) makes CUDA the process-wide default where a GPU
    is present (``torch.set_default_device("cuda")`` in its PyTorch backend); the tests choose
    their devices explicitly."""
    _pin_default_device()
    yield
    torch.set_default_device(None)


@pytest.fixture
def f64():
    """Run the test in float64 and restore the default dtype afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def sigint_default():
    """Python's KeyboardInterrupt handler for SIGINT during the test, also when the tests run
    with SIGINT ignored (``nohup pytest &``: the process then starts with SIG_IGN)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.fixture
def set_threads():
    """``torch.set_num_threads`` for the test; the count before it is restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture
def one_thread(set_threads):
    """torch on one thread for the test (syrk is used only then)."""
    set_threads(1)
