"""Mesh domains read with meshio: uniform sampling inside cells and on the boundary, outward normals,
and export of a solution at the mesh nodes (written atomically)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ._io import atomic_path
from ._validation import check_int, on_host

__all__ = ["MeshDomain", "export_solution"]

Seed = torch.Generator | int | None

# Cell types by topological dimension (meshio names); only the supported ones are sampled.
_SUPPORTED = {2: ("triangle", "quad"), 3: ("tetra",)}
_PREFIX_DIM = (("vertex", 0), ("line", 1), ("triangle", 2), ("quad", 2), ("polygon", 2),
               ("tetra", 3), ("hexahedron", 3), ("wedge", 3), ("pyramid", 3), ("polyhedron", 3))


def _cell_dim(kind: str) -> int | None:
    for prefix, d in _PREFIX_DIM:
        if kind.startswith(prefix):
            return d
    return None


def _generator(generator: Seed) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise TypeError(f"generator: expected a torch.Generator, an int seed or None, got "
                    f"{type(generator).__name__}")


def _uniform_simplex(m: int, k: int, g: torch.Generator | None) -> torch.Tensor:
    """m uniform barycentric coordinates on a simplex with k vertices, (m, k), float64.

    λ = E / Σ E with E_i ~ Exp(1) i.i.d. is Dirichlet(1, ..., 1): uniform on the simplex.
    """
    u = torch.rand(m, k, generator=g, dtype=torch.float64)
    e = -torch.log1p(-u)  # Exp(1); u < 1 so finite
    return e / e.sum(dim=1, keepdim=True)


def _measure(E: torch.Tensor) -> torch.Tensor:
    """The k-volume of simplices spanned by edge vectors E (m, k, d), k <= d: sqrt(det(E Eᵀ))/k!."""
    k = E.shape[1]
    G = E @ E.transpose(1, 2)
    return torch.sqrt(torch.linalg.det(G).clamp_min(0.0)) / math.factorial(k)


class MeshDomain:
    """A domain given by a mesh: 2D triangles and quadrilaterals, or 3D tetrahedra.

    Args:
        mesh: a ``meshio.Mesh``, or the path of any file meshio reads (``.msh`` Gmsh, ``.vtu``,
            ``.xdmf``, ...).
        dim: the domain dimension (2 or 3); default: 3 when the mesh has volume cells, else 2.
            Cells of lower dimension (lines, boundary triangles of a 3D Gmsh mesh, vertices) are
            ignored; cells of the domain dimension must be of a supported type.

    Attributes:
        dim: d, 2 or 3.
        vertices: the node coordinates (N, d), float64 (for 2D meshes the z column is dropped;
            it must be zero).
        simplices: (C, d + 1) node indices of the cells, quadrilaterals split into two triangles.
        volumes: (C,) the area (2D) or volume (3D) of each simplex, float64.
        facets: (F, d) node indices of the boundary facets (facets of exactly one cell).
        facet_normals: (F, d) outward unit normals (pointing away from the owning cell's centroid).
        facet_measures: (F,) facet lengths (2D) or areas (3D).

    Sampling is exactly uniform: a cell with probability proportional to its measure, then a
    uniform point in it (Dirichlet(1, ..., 1) barycentric coordinates); a quadrilateral is two
    triangles, so the density is uniform over it too. All methods follow the common domain
    protocol (``dim``, ``sample``, ``sample_boundary``) and return tensors in the requested dtype
    and device.
    """

    @on_host
    def __init__(self, mesh: Any, *, dim: int | None = None):
        import meshio

        if isinstance(mesh, (str, os.PathLike)):
            if not os.path.exists(mesh):
                raise ValueError(f"mesh: file not found: {os.fspath(mesh)!r}")
            mesh = meshio.read(mesh)
        if not isinstance(mesh, meshio.Mesh):
            raise TypeError(f"mesh: expected a meshio.Mesh or a path to a mesh file, got "
                            f"{type(mesh).__name__}")
        self.mesh = mesh
        pts = np.asarray(mesh.points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[0] == 0:
            raise ValueError("mesh: has no points")
        blocks = [(cb.type, np.asarray(cb.data)) for cb in mesh.cells if len(cb.data) > 0]
        dims = {kind: _cell_dim(kind) for kind, _ in blocks}
        unknown = [k for k, d in dims.items() if d is None]
        if unknown:
            raise ValueError(f"mesh: unsupported cell type(s) {sorted(unknown)}; supported: "
                             f"triangle, quad (2D), tetra (3D)")
        if dim is None:
            top = max((d for d in dims.values()), default=None)
            if top is None or top < 2:
                raise ValueError("mesh: has no cells of dimension 2 or 3 (empty mesh)")
            dim = top
        dim = check_int(dim, "dim", minimum=2)
        if dim not in _SUPPORTED:
            raise ValueError(f"dim: expected 2 or 3, got {dim}")
        bad = sorted({k for k, d in dims.items() if d == dim and k not in _SUPPORTED[dim]})
        if bad:
            raise ValueError(f"mesh: unsupported cell type(s) {bad} for a {dim}D domain; "
                             f"supported: {', '.join(_SUPPORTED[dim])}")
        cells = [(k, c) for k, c in blocks if dims[k] == dim]
        if not cells:
            raise ValueError(f"mesh: has no {dim}D cells ({' or '.join(_SUPPORTED[dim])}); "
                             f"empty mesh")
        if pts.shape[1] < dim:
            raise ValueError(f"mesh: points have {pts.shape[1]} coordinates, need {dim}")
        if pts.shape[1] > dim:
            extra = pts[:, dim:]
            if np.abs(extra).max() > 1e-12 * max(1.0, float(np.abs(pts).max())):
                raise ValueError(f"mesh: a {dim}D mesh must have zero coordinates beyond the "
                                 f"first {dim} (a curved surface in 3D is not supported)")
            pts = pts[:, :dim]
        if not np.isfinite(pts).all():
            raise ValueError("mesh: points contain NaN or Inf")
        self.dim = dim
        self._cells = cells
        simp = []
        for kind, c in cells:
            if kind == "quad":
                simp += [c[:, [0, 1, 2]], c[:, [0, 2, 3]]]
            else:
                simp.append(c)
        S = np.concatenate(simp, axis=0).astype(np.int64)
        if S.min() < 0 or S.max() >= pts.shape[0]:
            raise ValueError("mesh: cells refer to points that do not exist")
        self.vertices = torch.from_numpy(np.ascontiguousarray(pts))
        self.simplices = torch.from_numpy(S)
        V = self.vertices[self.simplices]  # (C, d+1, d)
        self.volumes = _measure(V[:, 1:] - V[:, :1])
        scale = float((self.vertices.max(0).values - self.vertices.min(0).values).max())
        tiny = 1e-12 * scale ** dim
        if bool((self.volumes <= tiny).any()):
            k = int((self.volumes <= tiny).nonzero()[0])
            raise ValueError(f"mesh: cell {k} is degenerate (zero {'area' if dim == 2 else 'volume'})")
        self._boundary(V)

    # ------------------------------------------------------------------------ topology
    def _boundary(self, V: torch.Tensor) -> None:
        d = self.dim
        S = self.simplices
        faces, owner, opposite = [], [], []
        for i in range(d + 1):
            keep = [j for j in range(d + 1) if j != i]
            faces.append(S[:, keep])
            owner.append(torch.arange(S.shape[0]))
            opposite.append(S[:, i])
        F = torch.cat(faces)
        owner = torch.cat(owner)
        key = torch.sort(F, dim=1).values
        uniq, inv, counts = torch.unique(key, dim=0, return_inverse=True, return_counts=True)
        on_boundary = counts[inv] == 1
        F, owner = F[on_boundary], owner[on_boundary]
        if F.shape[0] == 0:
            raise ValueError("mesh: has no boundary facets (a closed manifold?)")
        P = self.vertices[F]  # (F, d, d)
        E = P[:, 1:] - P[:, :1]
        if d == 2:
            t = E[:, 0]
            n = torch.stack([t[:, 1], -t[:, 0]], dim=1)
        else:
            n = torch.linalg.cross(E[:, 0], E[:, 1], dim=1)
        n = n / n.norm(dim=1, keepdim=True)
        cell_centroid = V[owner].mean(dim=1)
        facet_centroid = P.mean(dim=1)
        sign = torch.sign(((facet_centroid - cell_centroid) * n).sum(-1))
        self.facets = F
        self.facet_normals = n * sign[:, None]
        self.facet_measures = _measure(E)
        # For the nearest-facet normal lookup: x ≈ p0 + E ᵀ t, t = pinv(E)ᵀ (x − p0).
        self._facet_origin = P[:, 0]
        self._facet_edges = E
        self._facet_pinv = torch.linalg.pinv(E)  # (F, d, d-1)
        self._scale = float(self.facet_measures.max()) ** (1.0 / (d - 1))

    # --------------------------------------------------------------------------- measures
    @property
    def volume(self) -> float:
        """The area (2D) or volume (3D) of the domain."""
        return float(self.volumes.sum())

    @property
    def boundary_measure(self) -> float:
        """The length (2D) or area (3D) of the boundary."""
        return float(self.facet_measures.sum())

    @property
    def centroid(self) -> torch.Tensor:
        """The centroid of the domain, (d,), float64."""
        V = self.vertices[self.simplices].mean(dim=1)
        return (V * self.volumes[:, None]).sum(0) / self.volumes.sum()

    # --------------------------------------------------------------------------- sampling
    @on_host
    def sample(self, n: int, generator: Seed = None, *, dtype: torch.dtype | None = None,
               device: Any = None) -> torch.Tensor:
        """n points uniform in the domain, shape (n, d), ``dtype`` (default torch's default).

        A cell k is drawn with probability |K_k| / Σ|K|, then a point with Dirichlet(1, …, 1)
        barycentric coordinates, which is uniform in the cell.
        """
        n = check_int(n, "n", minimum=1)
        g = _generator(generator)
        idx = torch.multinomial(self.volumes, n, replacement=True, generator=g)
        lam = _uniform_simplex(n, self.dim + 1, g)
        x = (lam[:, :, None] * self.vertices[self.simplices[idx]]).sum(1)
        return x.to(dtype=dtype or torch.get_default_dtype(), device=device)

    @on_host
    def sample_boundary(self, n: int, generator: Seed = None, *,
                        dtype: torch.dtype | None = None,
                        device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n points uniform on the boundary and their outward unit normals, both (n, d).

        A boundary facet is drawn with probability proportional to its length/area, then a
        uniform point on it.
        """
        n = check_int(n, "n", minimum=1)
        g = _generator(generator)
        idx = torch.multinomial(self.facet_measures, n, replacement=True, generator=g)
        lam = _uniform_simplex(n, self.dim, g)
        x = (lam[:, :, None] * self.vertices[self.facets[idx]]).sum(1)
        dt = dtype or torch.get_default_dtype()
        return x.to(dtype=dt, device=device), self.facet_normals[idx].to(dtype=dt, device=device)

    # ---------------------------------------------------------------------------- normals
    def normals(self, x: torch.Tensor) -> torch.Tensor:
        """Outward unit normals at boundary points ``x`` (n, d): the normal of the nearest
        boundary facet, as a tensor (n, d) with the dtype and device of ``x``.

        The facet is found by the score dist(x, facet plane) + scale · Σ max(0, −λ_i), where λ
        are the barycentric coordinates of x's projection (zero exactly on the facet). Pure torch,
        so it works inside ``torch.func`` transforms; use it (or :meth:`normal_field`) as the
        direction of ``pinnk.ops.directional`` for Neumann terms. At a corner or edge, where the
        normal is undefined, one of the adjacent facets' normals is returned.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a tensor of shape (n, {self.dim}), got {shape}")
        dt, dev = x.dtype, x.device
        p0 = self._facet_origin.to(device=dev, dtype=dt)
        E = self._facet_edges.to(device=dev, dtype=dt)
        Pi = self._facet_pinv.to(device=dev, dtype=dt)
        r = x[:, None, :] - p0[None]  # (n, F, d)
        t = torch.einsum("nfd,fdk->nfk", r, Pi)  # (n, F, d-1)
        proj = torch.einsum("nfk,fkd->nfd", t, E)
        dist = (r - proj).norm(dim=-1)
        lam = torch.cat([1.0 - t.sum(-1, keepdim=True), t], dim=-1)
        score = dist + self._scale * torch.relu(-lam).sum(-1)
        return self.facet_normals.to(device=dev, dtype=dt)[score.argmin(dim=1)]

    def normal_field(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The outward normal as a direction field ``x -> (n, d)`` for ``pinnk.ops.directional``
        (see :meth:`normals`)."""
        def outward_normal(x: torch.Tensor) -> torch.Tensor:
            return self.normals(x)
        return outward_normal

    # ----------------------------------------------------------------------------- export
    def export_solution(self, model_or_values: Any, path: str | os.PathLike, *,
                        name: str | Sequence[str] = "u", chunk_size: int = 65536) -> None:
        """Write a solution at the mesh nodes with meshio, atomically (see :func:`export_solution`)."""
        export_solution(self, model_or_values, path, name=name, chunk_size=chunk_size)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k}×{len(c)}" for k, c in self._cells)
        return (f"MeshDomain(dim={self.dim}, nodes={self.vertices.shape[0]}, {kinds}, "
                f"boundary facets={self.facets.shape[0]})")


def export_solution(domain: MeshDomain, model_or_values: Any, path: str | os.PathLike, *,
                    name: str | Sequence[str] = "u", chunk_size: int = 65536) -> None:
    """Write the solution at the mesh nodes to ``path`` with meshio (format from the suffix:
    ``.vtu``, ``.xdmf``, ``.msh``, ...), atomically (a temporary file renamed over ``path``).

    Args:
        domain: the :class:`MeshDomain`.
        model_or_values: a model or callable ``x (N, d) -> (N,) or (N, k)`` evaluated at the nodes
            (in the dtype and on the device of its parameters, without gradients), or the values
            themselves, a tensor/array (N,) or (N, k) with N the number of nodes.
        path: the output file.
        name: the point-data name, or one name per output component (k names).
        chunk_size: nodes per model evaluation.

    The mesh written has the nodes (with the original coordinates) and the domain's cells.
    """
    import meshio

    if not isinstance(domain, MeshDomain):
        raise TypeError(f"domain: expected a MeshDomain, got {type(domain).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    N = domain.vertices.shape[0]
    if callable(model_or_values) and not isinstance(model_or_values, (torch.Tensor, np.ndarray)):
        f = model_or_values
        dtype, device = torch.get_default_dtype(), None
        if isinstance(f, torch.nn.Module):
            p = next((t for t in f.parameters() if t.is_floating_point()), None)
            if p is not None:
                dtype, device = p.dtype, p.device
        outs = []
        with torch.no_grad():
            for s in range(0, N, chunk_size):
                x = domain.vertices[s:s + chunk_size].to(dtype=dtype, device=device)
                y = f(x)
                if not isinstance(y, torch.Tensor):
                    y = torch.as_tensor(np.asarray(y))
                outs.append(y.detach().cpu())
        values = torch.cat(outs)
        where = "model_or_values"
    else:
        try:
            values = torch.as_tensor(np.asarray(model_or_values.detach().cpu())
                                     if isinstance(model_or_values, torch.Tensor)
                                     else np.asarray(model_or_values, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"model_or_values: expected a model, a callable or an array of "
                            f"values, got {type(model_or_values).__name__}") from exc
        where = "model_or_values"
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim not in (1, 2) or values.shape[0] != N:
        raise ValueError(f"{where}: expected values of shape ({N},) or ({N}, k) at the {N} mesh "
                         f"nodes, got {tuple(values.shape)}")
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{where}: the values contain NaN or Inf")
    arr = values.to(torch.float64).numpy()
    if isinstance(name, str):
        if not name:
            raise ValueError("name: expected a non-empty string")
        point_data = {name: arr}
    else:
        names = list(name)
        k = 1 if arr.ndim == 1 else arr.shape[1]
        if len(names) != k or not all(isinstance(s, str) and s for s in names):
            raise ValueError(f"name: expected one non-empty name per output component ({k}), got "
                             f"{names!r}")
        point_data = {s: (arr if arr.ndim == 1 else arr[:, j]) for j, s in enumerate(names)}
    out = meshio.Mesh(np.asarray(domain.mesh.points, dtype=np.float64),
                      [(k, c) for k, c in domain._cells], point_data=point_data)
    with atomic_path(path) as tmp:
        meshio.write(tmp, out)
