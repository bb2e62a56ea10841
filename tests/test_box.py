"""pinnk.Box: uniform interior and boundary sampling (the domain protocol shared with the mesh
and DeepXDE domains)."""

from __future__ import annotations

import pytest
import torch

import pinnk


def test_boundary_points_lie_on_faces_with_outward_normals():
    box = pinnk.Box((0.0, -1.0, 2.0), (2.0, 1.0, 3.0))
    x, nrm = box.sample_boundary(4000, torch.Generator().manual_seed(0), torch.float64)
    assert x.shape == nrm.shape == (4000, 3) and x.dtype == nrm.dtype == torch.float64
    torch.testing.assert_close(nrm.norm(dim=1), torch.ones(4000, dtype=torch.float64))
    lo, hi = torch.tensor(box.lower), torch.tensor(box.upper)
    assert bool(((x >= lo - 1e-12) & (x <= hi + 1e-12)).all())
    k = nrm.abs().argmax(dim=1)
    on = torch.where(nrm[torch.arange(4000), k] > 0, hi[k], lo[k])
    torch.testing.assert_close(x[torch.arange(4000), k], on.double())
    # faces drawn by area: the x_0 faces have area 2 each, x_1 faces 2, x_2 faces 4 (of 16)
    frac = torch.stack([(k == j).double().mean() for j in range(3)])
    expected = torch.tensor([4.0, 4.0, 8.0], dtype=torch.float64) / 16
    se = (expected * (1 - expected) / 4000).sqrt()
    assert bool(((frac - expected).abs() < 4 * se).all())
    # the outward flux of the field F(x) = x over the boundary equals div F · volume = 3 · 4
    area = 2 * (2 * 1 + 2 * 1 + 4 * 1) * 1.0
    flux = area * float((x * nrm).sum(dim=1).mean())
    assert abs(flux - 12.0) < 0.6


def test_one_dimensional_boundary_is_the_two_end_points():
    x, nrm = pinnk.Box((-1.0,), (3.0,)).sample_boundary(200, torch.Generator().manual_seed(1))
    assert set(x.flatten().tolist()) == {-1.0, 3.0}
    torch.testing.assert_close(nrm, torch.where(x > 0, 1.0, -1.0))


def test_sampling_reproducible_and_device_argument():
    box = pinnk.Box((0.0, 0.0), (1.0, 2.0))
    a = box.sample_boundary(10, torch.Generator().manual_seed(3), device="cpu")
    b = box.sample_boundary(10, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert box.sample(5, torch.Generator().manual_seed(0), torch.float64,
                      device="cpu").dtype == torch.float64
    with pytest.raises(ValueError, match=r"n: expected an integer >= 1"):
        box.sample_boundary(0)
