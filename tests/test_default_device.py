"""torch's global default device changes no draw and no result (CPU-only checks).

Importing DeepXDE makes CUDA the process-wide default device where a GPU is present. pinnk draws
on its generators' devices and builds its samples and its trainer's bookkeeping on the host, so
a seeded run is the same whatever that default is. Here the "meta" device stands in for CUDA:
it intercepts the same factory functions, and any tensor that wrongly lands on it has no values,
so a computation that used one would fail or differ. tests/test_cuda.py repeats the end-to-end
check with CUDA itself where a GPU is present.
"""

import numpy as np
import pytest
import torch

import pinnk
import problems
from pinnk.mesh import MeshDomain
from solvers import train
from test_mesh import _quad_square


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def meta_default():
    torch.set_default_device("meta")
    yield
    torch.set_default_device(None)


def test_samplers_draw_the_same_points(meta_default):
    box = pinnk.Box([0.0, -1.0], [1.0, 2.0])
    dom = MeshDomain(_quad_square(np.linspace(0, 1, 4)))
    under_meta = [box.sample(16, _gen(1), torch.float64), *box.sample_boundary(16, _gen(2)),
                  dom.sample(16, _gen(3)), *dom.sample_boundary(16, _gen(4))]
    torch.set_default_device(None)
    dom = MeshDomain(_quad_square(np.linspace(0, 1, 4)))
    plain = [box.sample(16, _gen(1), torch.float64), *box.sample_boundary(16, _gen(2)),
             dom.sample(16, _gen(3)), *dom.sample_boundary(16, _gen(4))]
    for a, b in zip(under_meta, plain):
        assert a.device.type == "cpu" and torch.equal(a, b)


def test_a_network_is_drawn_from_its_generator_and_placed_on_the_default(meta_default):
    net = pinnk.MLP(2, 3, [8, 7], parametrization="ntk", generator=_gen(5),
                    embedding=pinnk.FourierFeatures(2, 4, generator=_gen(6)))
    assert all(p.device.type == "meta" for p in net.parameters())
    on_cpu = pinnk.MLP(2, 3, [8, 7], parametrization="ntk", generator=_gen(5), device="cpu")
    torch.set_default_device(None)
    ref = pinnk.MLP(2, 3, [8, 7], parametrization="ntk", generator=_gen(5))
    for a, b in zip(on_cpu.parameters(), ref.parameters()):
        assert a.device.type == "cpu" and torch.equal(a, b)


@pytest.mark.parametrize("opts", [
    dict(weighting="trace:every=5", optimizer="adam:lr=1e-2", ntk_every=8, probe_points=8,
         sampler="rad", resample_every=7),
    dict(optimizer="adam+gn:lr=1e-2,switch=10,gn_kernel_points=16", dtype="float64",
         ntk_every=0),
], ids=["adam-trace-rad", "adam+gn-subset"])
def test_training_is_the_same_under_another_default_device(meta_default, tmp_path, opts):
    kw = dict(points=24, model_options={"width": 12, "depth": 2}, export=False, log_every=1,
              steps=16, device="cpu", **opts)
    a = train(problems.get("convection", beta=1.0), out=tmp_path / "a", **kw)
    torch.set_default_device(None)
    b = train(problems.get("convection", beta=1.0), out=tmp_path / "b", **kw)
    assert a.metrics["relative_l2"] == b.metrics["relative_l2"]
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
