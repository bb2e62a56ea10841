import pytest
import torch


@pytest.fixture(scope="module")
def f64():
    """DeepXDE (and torch) in float64 for a test module; restore both dtypes afterwards."""
    dde = pytest.importorskip("deepxde")
    old_torch = torch.get_default_dtype()
    old_real = dde.config.real.precision
    dde.config.set_default_float("float64")
    yield
    dde.config.set_default_float({16: "float16", 32: "float32", 64: "float64"}[old_real])
    torch.set_default_dtype(old_torch)
