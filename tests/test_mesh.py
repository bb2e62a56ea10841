"""pinnk.mesh: uniform sampling in mesh cells and on the boundary, normals, export (meshio)."""

import math

import meshio
import numpy as np
import pytest
import torch

import pinnk
from pinnk import ops
from pinnk.mesh import MeshDomain, export_solution
from oracle import jacobian_oracle, rel_err

Z = 4.5  # standard errors allowed in the Monte-Carlo checks (fixed seeds, so no flakiness)


def _quad_square(xs):
    """Quads on the tensor grid xs × xs (xs need not be uniform), as a meshio.Mesh in 3D coords."""
    n = len(xs) - 1
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    pts = np.c_[X.ravel(), Y.ravel(), np.zeros(X.size)]
    k = lambda i, j: i * (n + 1) + j  # noqa: E731
    quads = [[k(i, j), k(i + 1, j), k(i + 1, j + 1), k(i, j + 1)] for i in range(n)
             for j in range(n)]
    return meshio.Mesh(pts, [("quad", np.array(quads))])


def _l_shape_triangles():
    """The L-shape [0,2]² minus (1,2]² as 6 triangles (area 3), plus boundary lines."""
    pts = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1], [0, 2], [1, 2]], float)
    tris = np.array([[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4], [3, 4, 7], [3, 7, 6]])
    lines = np.array([[0, 1], [1, 2]])
    return meshio.Mesh(pts, [("line", lines), ("triangle", tris)])


def _tet_cube(m=2):
    """The unit cube as an m×m×m grid of cubes, each split into 6 tetrahedra (Kuhn)."""
    xs = np.linspace(0, 1, m + 1)
    X, Y, Zc = np.meshgrid(xs, xs, xs, indexing="ij")
    pts = np.c_[X.ravel(), Y.ravel(), Zc.ravel()]
    k = lambda i, j, l: (i * (m + 1) + j) * (m + 1) + l  # noqa: E731
    tets = []
    for i in range(m):
        for j in range(m):
            for l in range(m):
                v = [k(i + a, j + b, l + c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
                # vertex index bits (a, b, c); Kuhn simplices walk from 000 to 111
                for path in ((4, 6), (4, 5), (2, 6), (2, 3), (1, 5), (1, 3)):
                    tets.append([v[0], v[path[0]], v[path[1]], v[7]])
    return meshio.Mesh(pts, [("tetra", np.array(tets))])


def test_quad_sampling_uniform_and_read_from_vtu(tmp_path):
    path = tmp_path / "square.vtu"
    meshio.write(path, _quad_square(np.array([0.0, 0.1, 0.35, 0.8, 1.0])))  # uneven cells
    dom = MeshDomain(path)
    assert dom.dim == 2 and math.isclose(dom.volume, 1.0) and math.isclose(dom.boundary_measure, 4)
    n = 40000
    x = dom.sample(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.shape == (n, 2) and x.dtype == torch.float64
    assert bool(((x >= 0) & (x <= 1)).all())
    se = math.sqrt(1 / 12 / n)
    assert torch.all((x.mean(0) - 0.5).abs() < Z * se)
    for lo, hi in ((0.0, 0.3), (0.2, 0.45), (0.9, 1.0)):  # slabs cutting through cells
        frac = float(((x[:, 0] >= lo) & (x[:, 0] < hi)).double().mean())
        p = hi - lo
        assert abs(frac - p) < Z * math.sqrt(p * (1 - p) / n), (lo, hi, frac)
    # within one quad cell (0.35..0.8)², sub-triangle halves get equal mass
    inside = x[(x[:, 0] > 0.35) & (x[:, 0] < 0.8) & (x[:, 1] > 0.35) & (x[:, 1] < 0.8)]
    above = float((inside[:, 1] - 0.35 > inside[:, 0] - 0.35).double().mean())
    assert abs(above - 0.5) < Z * math.sqrt(0.25 / inside.shape[0])


def test_triangle_l_shape_from_msh_centroid_and_boundary(tmp_path):
    path = tmp_path / "l.msh"
    m = _l_shape_triangles()
    tags = [np.ones(len(c.data), dtype=int) for c in m.cells]
    m.cell_data = {"gmsh:physical": tags, "gmsh:geometrical": tags}
    meshio.write(path, m, file_format="gmsh22", binary=False)
    dom = MeshDomain(str(path))
    assert dom.dim == 2 and math.isclose(dom.volume, 3.0) and math.isclose(dom.boundary_measure, 8)
    c = torch.tensor([5 / 6, 5 / 6], dtype=torch.float64)  # centroid of the L
    assert torch.allclose(dom.centroid, c)
    n = 30000
    x = dom.sample(n, generator=1, dtype=torch.float64)
    assert not bool(((x[:, 0] > 1) & (x[:, 1] > 1)).any())  # the missing corner stays empty
    sd = x.std(0)
    assert torch.all((x.mean(0) - c).abs() < Z * sd / math.sqrt(n))
    xb, nb = dom.sample_boundary(n, generator=2, dtype=torch.float64)
    assert torch.allclose(nb.norm(dim=1), torch.ones(n, dtype=torch.float64))
    # outward: a small step along n leaves the L, a step against it stays inside
    def inside(p):
        return (p[:, 0] > 0) & (p[:, 1] > 0) & (p[:, 0] < 2) & (p[:, 1] < 2) & \
            ~((p[:, 0] > 1) & (p[:, 1] > 1))
    corner = ((xb - torch.tensor([1.0, 1.0], dtype=torch.float64)).norm(dim=1) < 1e-3) | \
        (xb.round().sub(xb).abs().max(1).values < 1e-6)
    ok = ~corner
    assert not bool(inside(xb[ok] + 1e-4 * nb[ok]).any())
    assert bool(inside(xb[ok] - 1e-4 * nb[ok]).all())
    # boundary sampling proportional to length: the edge y = 0 (length 2) gets 1/4
    frac = float((xb[:, 1].abs() < 1e-12).double().mean())
    assert abs(frac - 0.25) < Z * math.sqrt(0.25 * 0.75 / n)


def test_square_normals_are_axis_normals_and_field():
    dom = MeshDomain(_quad_square(np.linspace(0, 1, 4)))
    xb, nb = dom.sample_boundary(500, generator=3, dtype=torch.float64)
    expect = torch.zeros_like(xb)
    expect[xb[:, 0] < 1e-12, 0] = -1
    expect[xb[:, 0] > 1 - 1e-12, 0] = 1
    expect[xb[:, 1] < 1e-12, 1] = -1
    expect[xb[:, 1] > 1 - 1e-12, 1] = 1
    assert torch.equal(nb, expect)
    assert torch.equal(dom.normals(xb), nb)
    # a Neumann term with the normal field: the kernel (jacobian path, under vmap) equals the
    # oracle, and the structured path agrees
    net = pinnk.MLP(2, 1, 8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = pinnk.Term("flux", ops.directional(dom.normal_field()), xb[:40],
                   target=torch.zeros(40, dtype=torch.float64))
    J = jacobian_oracle(lambda: t.residual(net), net)
    for impl in ("jacobian", "auto"):
        assert rel_err(pinnk.ntk(net, [t], impl).block(0, 0), J @ J.T) <= 1e-10


def test_tet_cube_boundary_area_volume_normals():
    dom = MeshDomain(_tet_cube(2))
    assert dom.dim == 3
    assert math.isclose(dom.volume, 1.0, rel_tol=1e-12)
    assert math.isclose(dom.boundary_measure, 6.0, rel_tol=1e-12)
    assert dom.facets.shape == (6 * 8, 3)
    n = 20000
    x = dom.sample(n, generator=4, dtype=torch.float64)
    assert torch.all((x.mean(0) - 0.5).abs() < Z * math.sqrt(1 / 12 / n))
    frac = float((x.sum(1) < 1).double().mean())  # the corner simplex x+y+z<1 has volume 1/6
    assert abs(frac - 1 / 6) < Z * math.sqrt(5 / 36 / n)
    xb, nb = dom.sample_boundary(3000, generator=5, dtype=torch.float32)
    assert xb.dtype == nb.dtype == torch.float32
    on_face = (xb.abs() < 1e-6) | ((xb - 1).abs() < 1e-6)
    assert bool(on_face.any(1).all())
    # each normal is ± the axis of the face the point lies on
    axis = nb.abs().argmax(1)
    assert torch.allclose(nb.abs().sum(1), torch.ones(3000))
    assert bool(on_face[torch.arange(3000), axis].all())
    sign = torch.where(xb[torch.arange(3000), axis] > 0.5, 1.0, -1.0)
    assert torch.equal(nb[torch.arange(3000), axis], sign)
    # the six faces are hit in proportion to their area (1/6 each)
    counts = torch.bincount(axis * 2 + (sign > 0).long(), minlength=6).double() / 3000
    assert torch.all((counts - 1 / 6).abs() < Z * math.sqrt(5 / 36 / 3000))


def test_sampling_reproducible():
    dom = MeshDomain(_l_shape_triangles())
    a = dom.sample(20, generator=torch.Generator().manual_seed(9))
    b = dom.sample(20, generator=9)
    c = dom.sample(20, generator=10)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.get_default_dtype()
    p1, n1 = dom.sample_boundary(20, generator=9)
    p2, n2 = dom.sample_boundary(20, generator=9)
    assert torch.equal(p1, p2) and torch.equal(n1, n2)


def test_export_roundtrip(tmp_path):
    dom = MeshDomain(_l_shape_triangles())
    vals = dom.vertices[:, 0] ** 2 - dom.vertices[:, 1]
    out = tmp_path / "sol.vtu"
    export_solution(dom, vals, out, name="u")
    back = meshio.read(out)
    assert np.allclose(back.point_data["u"], vals.numpy())
    assert back.get_cells_type("triangle").shape == (6, 3)
    net = pinnk.MLP(2, 2, 6, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    dom.export_solution(net, out, name=["u", "v"])
    back = meshio.read(out)
    with torch.no_grad():
        ref = net(dom.vertices).numpy()
    assert np.allclose(back.point_data["u"], ref[:, 0]) and np.allclose(back.point_data["v"],
                                                                        ref[:, 1])
    assert [p.name for p in tmp_path.iterdir()] == ["sol.vtu"]  # no temporary file left
    with pytest.raises(ValueError, match=r"model_or_values: expected values of shape \(8,\)"):
        export_solution(dom, np.zeros(5), tmp_path / "bad.vtu")
    with pytest.raises(ValueError, match="name: expected one non-empty name per output"):
        export_solution(dom, np.zeros((8, 2)), tmp_path / "bad.vtu", name=["u"])
    with pytest.raises(ValueError, match="model_or_values: the values contain NaN"):
        export_solution(dom, np.full(8, np.nan), tmp_path / "bad.vtu")
    assert not (tmp_path / "bad.vtu").exists()


def test_errors(tmp_path):
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1],
                    [0, 1, 1]], float)
    hexa = meshio.Mesh(pts, [("hexahedron", np.arange(8)[None])])
    with pytest.raises(ValueError, match=r"mesh: unsupported cell type\(s\) \['hexahedron'\] for "
                                         r"a 3D domain"):
        MeshDomain(hexa)
    with pytest.raises(ValueError, match="mesh: has no cells of dimension 2 or 3"):
        MeshDomain(meshio.Mesh(pts[:2], [("line", np.array([[0, 1]]))]))
    with pytest.raises(ValueError, match="mesh: has no points"):
        MeshDomain(meshio.Mesh(np.zeros((0, 3)), []))
    flat = meshio.Mesh(np.array([[0, 0], [1, 0], [2, 0], [0, 1]], float),
                       [("triangle", np.array([[0, 1, 3], [0, 1, 2]]))])
    with pytest.raises(ValueError, match=r"mesh: cell 1 is degenerate \(zero area\)"):
        MeshDomain(flat)
    with pytest.raises(ValueError, match="mesh: a 2D mesh must have zero coordinates beyond"):
        MeshDomain(meshio.Mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 1.0]]),
                               [("triangle", np.array([[0, 1, 2]]))]))
    with pytest.raises(ValueError, match="mesh: file not found"):
        MeshDomain(tmp_path / "missing.msh")
    with pytest.raises(TypeError, match="mesh: expected a meshio.Mesh or a path"):
        MeshDomain(42)
    dom = MeshDomain(_l_shape_triangles())
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        dom.sample(0)
    with pytest.raises(TypeError, match="n: expected an integer"):
        dom.sample_boundary(2.5)
    with pytest.raises(TypeError, match="generator: expected a torch.Generator"):
        dom.sample(3, generator="x")
    with pytest.raises(ValueError, match=r"x: expected a tensor of shape \(n, 2\)"):
        dom.normals(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="dim: expected 2 or 3"):
        MeshDomain(_l_shape_triangles(), dim=4)
