"""Where a shock tube's error sits: the whole-grid ρ error split by the waves of the solution.

    python -m solvers.benchmarks.tube_regions PROBLEM [RUN ...] [--viscosity NU ...] [--schemes]
        [--smear W ...] [--start T] [--band 0.02] [--fresh N] [--jump [D]]

The relative L2 error of ρ over the trainer's 101 × 101 (x, t) evaluation grid (the accuracy
rows' “whole grid” measure), ‖e‖₂ / ‖ρ‖₂, written as the root sum of squares of its parts:
the t = 0 row, with ``--start T`` the rows 0 < t ≤ T, one band of half-width ``--band`` in x
around each front of the exact solution (left shock or the left fan's head and tail, the
contact, right shock or the right fan's tail and head: x = x0 + s t for each wave speed s of
the exact Riemann solver), and the rest. Each
part is ‖e restricted to the region‖₂ / ‖ρ‖₂, so the squares of the parts add up to the square
of the total; a grid point near two fronts counts for the first (from the left).

Rows: each RUN folder (a trainer's run folder holding the final network, an MLP whose width
and depth are read from its checkpoint, with the problem's output transform); for each
``--viscosity`` ν the finite-volume solution of the viscous tube
(:func:`problems.viscous_riemann_1d`, an even number of cells for a cell Péclet number ≤ 2 at
twice the fastest wave speed); with ``--schemes`` the HLLE finite volumes on 1000 cells of the
accuracy page (first and second order) — finite-volume solutions read as the accuracy page
reads them (their initial data at t = 0); for each ``--smear`` W the exact solution smeared in x
by a Gaussian of standard deviation W at every t > 0 (its t = 0 row exact): what a solution whose
every front has that width scores, the resolution a bound on this measure asks for.

With ``--fresh N`` a second table compares, for each RUN, the loss of its final network on the
points it ended on (the checkpoint's; Σ over the terms of ‖r‖²/(2n), the trainer's loss with
weights 1) with the same loss on N fresh points per term drawn from the run's own problem (its
config's parameters: the same distribution, similarity points and gap included; a fixed
seed) — also over the fresh points with t > T (``--start``) and as the median point's r²/2:
how far the fit of the points carries between them, and where it does not.

With ``--jump D`` a third table gives, for each RUN, where its initial jump lies: the offset s
for which a sharp jump at x0 + s holds the network's mass (and, for p, its integral) over
[x0 − D, x0 + D] at t = 0, s = (∫ w(x, 0) dx − D (w_L + w_R)) / (w_L − w_R) (trapezoid rule on
20001 nodes; D = 0.01 by default). Every wave of a Riemann solution starts at the jump, so an
offset there moves them all (the tubes' ``initial_window`` terms hold it at 0). The table
also gives the network's ρ(x0, 0): the grid's point on the initial jump, where the exact data
take the right state.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.special import ndtr

from . import accuracy

__all__ = ["front_regions", "error_by_region", "smeared_exact", "own_and_fresh_losses",
           "jump_offset"]


def front_regions(problem, grid: torch.Tensor, band: float = 0.02,
                  start: float = 0.0) -> tuple[np.ndarray, list]:
    """A region label per grid point (inputs (x, t)) and the labels in order: ``"t = 0"``,
    with ``start`` > 0 ``"0 < t ≤ start"`` (the first time rows, where all fronts are close to
    the initial jump), the fronts of the exact solution from left to right, ``"rest"``. A later
    point within ``band`` in x of a front x0 + s t belongs to it (to the leftmost of several)."""
    if not band > 0:
        raise ValueError(f"band: expected a positive half-width, got {band!r}")
    if not (start >= 0 and math.isfinite(start)):
        raise ValueError(f"start: expected a time >= 0, got {start!r}")
    sol = problem.solver
    names = (["left shock"] if sol.left_wave == "shock" else ["left fan head", "left fan tail"])
    names += ["contact"]
    names += (["right shock"] if sol.right_wave == "shock"
              else ["right fan tail", "right fan head"])
    speeds = sol.wave_speeds()
    gp = grid.detach().cpu().to(torch.float64).numpy()
    x, t = gp[:, 0], gp[:, problem.time_index]
    labels = np.full(len(gp), "rest", dtype=object)
    labels[t == 0] = "t = 0"
    first = []
    if start > 0:
        first = [f"0 < t ≤ {start:g}"]
        labels[(t > 0) & (t <= start)] = first[0]
    for name, s in zip(names, speeds):
        near = (t > 0) & (labels == "rest") & (np.abs(x - (problem.x0 + s * t)) <= band)
        labels[near] = name
    return labels, ["t = 0", *first, *names, "rest"]


def smeared_exact(problem, grid: torch.Tensor, output: str, width: float,
                  nodes: int = 1201) -> np.ndarray:
    """The exact solution's ``output`` at the grid's points (inputs (x, t)), smeared in x by a
    Gaussian of standard deviation ``width`` at t > 0 and exact at t = 0:

        ū(x, t) = ∫ u(x − s, t) φ(s / W) / W ds   (φ the standard normal density),

    by the midpoint rule on ``nodes`` equal cells of [−6W, 6W], each node weighted by the
    normal probability of its cell (a jump of u is then off by at most half a cell's weight
    times the jump, 1e-3 of it with the default nodes). Returns (n,) float64. Every front of u,
    a jump or a kink, is spread over a width of order W, as a solution of a viscous
    regularisation or a scheme spreads them (here with one width for all fronts and times)."""
    if not (width >= 0 and math.isfinite(width)):
        raise ValueError(f"width: expected a finite width >= 0, got {width!r}")
    k = problem.output_names.index(output)
    g = grid.detach().cpu().to(torch.float64)
    exact = problem.solution(g)[:, k].numpy()
    if width == 0:
        return exact
    edges = np.linspace(-6.0, 6.0, nodes + 1)
    cdf = ndtr(edges)
    weights = np.diff(cdf) / (cdf[-1] - cdf[0])
    out = np.zeros(len(g))
    for si, wi in zip(0.5 * (edges[1:] + edges[:-1]), weights):
        h = g.clone()
        h[:, 0] += width * si
        out += wi * problem.solution(h)[:, k].numpy()
    first = g[:, problem.time_index].numpy() == 0
    out[first] = exact[first]
    return out


def error_by_region(pred: np.ndarray, ref: np.ndarray, labels: np.ndarray, order: list) -> dict:
    """``{"total": ‖pred − ref‖/‖ref‖, region: ‖(pred − ref) on region‖/‖ref‖ ...}``; the squares
    of the regions' values add up to the square of the total."""
    e2 = (np.asarray(pred, dtype=np.float64) - ref) ** 2
    norm = float(np.linalg.norm(ref))
    out = {"total": float(np.sqrt(e2.sum())) / norm}
    for name in order:
        out[name] = float(np.sqrt(e2[labels == name].sum())) / norm
    return out


def _final_network(problem, run: Path) -> tuple:
    """``(model, checkpoint)``: the final network of a run folder for ``problem`` in float64 (its
    MLP's hidden width and depth read from the checkpoint's weights) and the checkpoint."""
    from solvers._train import CHECKPOINT, load_network, mlp_shape, read_checkpoint

    ck = read_checkpoint(run / CHECKPOINT, str(run))
    return load_network(problem, mlp_shape(ck["model"]), torch.float64, run, str(run)), ck


def _rho_on_grid(problem, model, grid: torch.Tensor) -> np.ndarray:
    """ρ of a network at the grid's points."""
    with torch.no_grad():
        return model(grid.to(torch.float64))[:, problem.output_names.index("rho")].numpy()


def jump_offset(problem, model, half_width: float = 0.01, nodes: int = 20001) -> dict:
    """Where a network's initial jump lies: for ``"rho"`` and ``"p"`` the offset s of the sharp
    jump at x0 + s with the same integral of that output over [x0 − D, x0 + D] at t = 0
    (D = ``half_width``), s = (∫ w(x, 0) dx − D (w_L + w_R)) / (w_L − w_R), by the trapezoid
    rule on ``nodes`` nodes in float64; NaN where the two states are equal; and
    ``"rho_at_x0"``, the network's ρ(x0, 0): the 101 × 101 grid has a point there, where the
    exact data take the right state (x >= x0), and a network centred on x0 is halfway
    (its error there is most of the whole-grid measure's t = 0 row). ``model`` maps (n, 2)
    points (x, t) to (n, 3) outputs (ρ, u, p)."""
    if not 0 < half_width <= min(problem.x0, 1.0 - problem.x0):
        raise ValueError(f"half_width: expected 0 < D <= min(x0, 1 - x0), got {half_width!r}")
    x = torch.linspace(problem.x0 - half_width, problem.x0 + half_width, nodes,
                       dtype=torch.float64)
    with torch.no_grad():
        w = model(torch.stack([x, torch.zeros_like(x)], dim=1)).to(torch.float64).numpy()
        at = model(torch.tensor([[problem.x0, 0.0]], dtype=torch.float64))
    out = {"rho_at_x0": float(at[0, problem.output_names.index("rho")])}
    for name in ("rho", "p"):
        k = problem.output_names.index(name)
        left, right = problem.left[k], problem.right[k]
        integral = float(np.trapezoid(w[:, k], x.numpy()))
        out[name] = ((integral - half_width * (left + right)) / (left - right)
                     if left != right else math.nan)
    return out


def own_and_fresh_losses(run: Path, n: int, seed: int = 1234, start: float = 0.0) -> dict:
    """The losses ‖r‖²/(2n) (``Term.loss``) of a run folder's final network (float64), each a
    dict term name -> value: ``"own"`` at the checkpoint's points; ``"fresh"`` at ``n`` fresh
    points per term drawn by the run's problem (``config.json``'s name and parameters) from a
    generator seeded with ``seed``; ``"after"`` the same at those of the fresh points with
    t > ``start`` only (mean over them); ``"median"`` the median of r²/2 over the fresh points;
    ``"residual"`` the names of the PDE residual terms (``Term.is_residual``). Raises ValueError
    if the checkpoint's point sets do not match the problem's terms."""
    import json

    import problems
    from solvers._train import terms_at

    cfg = json.loads((run / "config.json").read_text())
    problem = problems.get(cfg["problem"]["name"], **cfg["problem"]["params"])
    model, ck = _final_network(problem, run)
    templates = problem.terms(2, torch.Generator().manual_seed(0), torch.float64)
    if len(ck["points"]) != len(templates):
        raise ValueError(f"runs: {run} holds {len(ck['points'])} point sets, its problem has "
                         f"{len(templates)} terms")
    out: dict = {"own": {}, "fresh": {}, "after": {}, "median": {},
                 "residual": [t.name for t in templates if t.is_residual]}
    for term in terms_at(templates, ck["points"], ck["targets"]):
        out["own"][term.name] = float(term.to(dtype=torch.float64).loss(model).detach())
    time_index = problem.time_index
    for term in problem.terms({t.name: n for t in templates},
                              torch.Generator().manual_seed(seed), torch.float64):
        half_r2 = 0.5 * term.residual(model).detach() ** 2
        late = term.points[:, time_index] > start
        out["fresh"][term.name] = float(half_r2.mean())
        out["after"][term.name] = float(half_r2[late].mean()) if bool(late.any()) else 0.0
        out["median"][term.name] = float(half_r2.median())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("problem", help="a tube of the zoo: sod, lax or riemann")
    ap.add_argument("runs", nargs="*", type=Path, help="run folders with a final network")
    ap.add_argument("--viscosity", type=float, nargs="*", default=[],
                    help="viscosities ν of finite-volume references of the viscous tube")
    ap.add_argument("--schemes", action="store_true",
                    help="the HLLE schemes of the accuracy page on 1000 cells as well")
    ap.add_argument("--smear", type=float, nargs="*", default=[], metavar="W",
                    help="the exact solution smeared in x by a Gaussian of standard deviation W")
    ap.add_argument("--start", type=float, default=0.0, metavar="T",
                    help="a region of the first time rows 0 < t <= T (default 0: none)")
    ap.add_argument("--band", type=float, default=0.02,
                    help="half-width in x of a front's region (default 0.02)")
    ap.add_argument("--fresh", type=int, default=0, metavar="N",
                    help="the runs' losses on N fresh points per term beside their own points")
    ap.add_argument("--jump", type=float, nargs="?", const=0.01, default=None, metavar="D",
                    help="the offset of each run's initial jump, from its integrals over "
                         "[x0 - D, x0 + D] at t = 0 (D default 0.01)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    a = ap.parse_args(argv)
    import problems

    if a.problem not in ("sod", "lax", "riemann"):
        ap.error(f"problem: expected a tube (sod, lax, riemann), got {a.problem!r}")
    if not a.band > 0:
        ap.error(f"--band: expected a positive half-width, got {a.band!r}")
    if any(not (nu > 0 and math.isfinite(nu)) for nu in a.viscosity):
        ap.error("--viscosity: expected positive values")
    missing = [str(r) for r in a.runs if not (r / "checkpoint.pt").is_file()]
    if missing:
        ap.error(f"runs: no checkpoint.pt in {', '.join(missing)}")
    if any(not (w > 0 and math.isfinite(w)) for w in a.smear):
        ap.error("--smear: expected positive widths")
    if not (a.start >= 0 and math.isfinite(a.start)):
        ap.error(f"--start: expected a time >= 0, got {a.start!r}")
    if a.fresh < 0 or (a.fresh and not a.runs):
        ap.error(f"--fresh: expected a positive number of points and run folders, got "
                 f"{a.fresh!r}")
    if a.jump is not None and not (0 < a.jump <= 0.25 and a.runs):
        ap.error(f"--jump: expected a half-width 0 < D <= 0.25 and run folders, got {a.jump!r}")
    if not (a.runs or a.viscosity or a.schemes or a.smear):
        ap.error("nothing to measure: give run folders, --viscosity, --schemes or --smear")
    torch.set_num_threads(a.threads)
    problem = problems.get(a.problem)
    grid, ref = accuracy._grid_reference(problem, "rho")
    labels, order = front_regions(problem, grid, a.band, a.start)
    models = [_final_network(problem, run)[0] for run in a.runs]
    rows = [(str(run), _rho_on_grid(problem, model, grid)) for run, model in zip(a.runs, models)]
    for nu in a.viscosity:
        viscous = problems.get(a.problem, viscosity=nu)
        cells = accuracy.regularisation_cells(viscous, nu)
        _, _, values = accuracy.cell_solution_on_grid(
            viscous, "rho", lambda t: viscous.viscous_reference(t=t, cells=cells))
        rows.append((f"viscous tube, ν = {nu:g} ({cells} cells)", values))
    if a.schemes:
        for label, order_, limiter in accuracy.SCHEMES:
            _, _, values = accuracy.cell_solution_on_grid(
                problem, "rho",
                lambda t: problem.hlle_reference(t=t, cells=accuracy.SCHEME_CELLS,
                                                 order=order_, limiter=limiter))
            rows.append((f"{label}, {accuracy.SCHEME_CELLS} cells", values))
    for w in a.smear:
        rows.append((f"exact, smeared by σ = {w:g}", smeared_exact(problem, grid, "rho", w)))
    print(f"{a.problem}: relative L2 of ρ over the 101 × 101 grid by region (fronts ± {a.band:g}"
          f" in x); grid points: " + ", ".join(f"{k} {int((labels == k).sum())}"
                                               for k in order))
    print("| solution | total | " + " | ".join(order) + " |")
    print("|---" * (len(order) + 2) + "|")
    for name, values in rows:
        parts = error_by_region(values, ref, labels, order)
        print(f"| {name} | {parts['total']:.2e} | "
              + " | ".join(f"{parts[k]:.1e}" for k in order) + " |")
    if a.fresh:
        print(f"\nloss (Σ of the terms' ‖r‖²/(2n)) at the run's own final points and at "
              f"{a.fresh} fresh points per term (all; those with t > {a.start:g}; the largest "
              f"of the terms' medians of r²/2 over the fresh points)")
        print(f"| run | own points | fresh points | fresh, t > {a.start:g} | largest median | "
              f"residual terms own / fresh | initial terms own / fresh |")
        print("|---|---|---|---|---|---|---|")
        for run in a.runs:
            try:
                got = own_and_fresh_losses(run, a.fresh, start=a.start)
            except ValueError as exc:
                ap.error(str(exc))
            own, fresh = got["own"], got["fresh"]
            res = got["residual"]
            ini = [k for k in own if k.startswith("initial")]
            parts = [f"{sum(own[k] for k in keys):.1e} / {sum(fresh[k] for k in keys):.1e}"
                     for keys in (res, ini)]
            print(f"| {run} | {sum(own.values()):.2e} | {sum(fresh.values()):.2e} | "
                  f"{sum(got['after'].values()):.2e} | {max(got['median'].values()):.1e} | "
                  + " | ".join(parts) + " |")
    if a.jump is not None:
        print(f"\nthe initial jump's offset from x0, from the integrals over [x0 - {a.jump:g}, "
              f"x0 + {a.jump:g}] at t = 0")
        print(f"| run | offset from ρ | offset from p | ρ(x0, 0) (exact {problem.right[0]:g}) |")
        print("|---|---|---|---|")
        for run, model in zip(a.runs, models):
            got = jump_offset(problem, model, a.jump)
            print(f"| {run} | {got['rho']:+.2e} | {got['p']:+.2e} | {got['rho_at_x0']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
