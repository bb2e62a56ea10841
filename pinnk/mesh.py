"""Mesh domains (meshio): uniform sampling inside 2D triangles/quadrilaterals and 3D tetrahedra,
boundary sampling with outward unit normals, and atomic export of a solution at the mesh nodes.

Every domain follows the small protocol ``dim``, ``sample(n, generator=None, dtype=..., device=...)``
(interior points (n, d)) and ``sample_boundary(n, generator=None, ...) -> (points, normals)``.
A Neumann term on a mesh::

    dom = pinnk.mesh.MeshDomain("domain.msh")
    xb, nb = dom.sample_boundary(256, generator=g)
    pinnk.Term("flux", pinnk.ops.directional(dom.normal_field()), xb, target=g_n(xb))
"""

from ._mesh import MeshDomain, export_solution

__all__ = ["MeshDomain", "export_solution"]
