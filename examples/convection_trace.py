"""Tutorial: a first-order PDE trained with NTK trace-rule loss weights.

The convection equation u_t + β u_x = 0 on x ∈ [0, 2π), t ∈ [0, 1], periodic in x, with
u(x, 0) = sin x (exact solution sin(x − βt)) is the classic PINN failure case at β = 30. This
script

1. builds the problem's derivative-label terms and looks at the empirical NTK before training
   (the per-term kernel traces, the trace-rule weights, the spectrum of Θ* with unit and with
   trace weights);
2. trains the same network twice, with fixed unit weights and with the trace rule
   (:class:`pinnk.weighting.TraceNTK`), and prints the relative L2 errors;
3. shows how the trace weights evolved and what the recorded NTK diagnostics say: λ_min(Θ*) and
   the per-point angle statistics between the initial-condition term and the PDE residual.

Run ``python examples/convection_trace.py --quick`` for a few seconds on one CPU core (β = 5,
a 2 × 32 network, 300 steps), or without ``--quick`` for the full setup (β = 30, the
configuration of docs/results/convection-beta30.json shortened to 20000 steps: about 7 minutes
per run on one CPU thread, two runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import pinnk
import problems
import solvers
from pinnk.weighting import Fixed, TraceNTK


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few seconds on one core")
    p.add_argument("--out", default="runs/tutorial-convection", help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    return p.parse_args(argv)


def setup(quick: bool) -> dict:
    """The run configuration of each mode.

    The full mode is the configuration of ``docs/results/convection-beta30.json`` shortened to
    20000 steps: an exactly periodic embedding in x and a fixed Fourier basis in t, Adam with
    exponential decay, fresh collocation points every 100 steps.
    """
    if quick:
        return {"params": {"beta": 5.0}, "steps": 300, "every": 50,
                "points": {"residual": 256, "initial": 64, "periodic": 64},
                "model_options": {"width": 32, "depth": 2}, "optimizer": None,
                "resample_every": 0, "ntk_every": 100, "probe_points": 16, "export": False}
    embedding = {"kind": "periodic", "dims": [0, 1], "periods": [6.283185307179586, 1.0],
                 "harmonics": [1, 8], "keep_input": [1]}
    return {"params": {"beta": 30.0, "periodic_embedding": True}, "steps": 20000, "every": 100,
            "points": None, "model_options": {"width": 50, "depth": 4, "embedding": embedding},
            "optimizer": "adam:lr=1e-3,decay_rate=0.9,decay_steps=2000", "resample_every": 100,
            "ntk_every": 2000, "probe_points": 64, "export": True}


def kernel_at_initialisation(problem, cfg: dict) -> None:
    """Step 1: the empirical NTK of the problem's terms for a freshly initialised network."""
    gen = torch.Generator().manual_seed(0)
    model = solvers.build_model(problem, solvers.model_config(problem,
                                                              **(cfg["model_options"] or {})),
                                gen, torch.float64)
    terms = problem.terms(cfg["probe_points"], torch.Generator().manual_seed(1), torch.float64)
    K = pinnk.ntk(model, terms)                       # lazy: nothing is computed yet
    names = [t.name for t in terms]
    means = {n: float(K.diagonal(n).mean()) for n in names}   # m_i = tr Θ_ii / n_i
    lam = K.trace_weights(kind="mean")                # λ_i = Σ_j m_j / m_i
    print("kernel at initialisation")
    for n, w in zip(names, lam.tolist()):
        print(f"  {n:>9}: tr Θ_ii / n_i = {means[n]:.3e}   trace weight λ = {w:.3g}")
    for label, weights in (("unit weights ", None), ("trace weights", lam.tolist())):
        ev = K.eigvalsh(weights)                      # real spectrum of Θ* = Θ Λ, ascending
        top = float(ev[-1])
        # A smooth network's kernel at points on a line (the initial and periodic terms) is
        # numerically low-rank: λ_min(Θ*) sits at round-off, so count the eigenvalues that are not.
        rank = int((ev > 1e-8 * top).sum())
        print(f"  Θ* with {label}: λ_max = {top:.3e}, {rank} of {ev.numel()} eigenvalues "
              f"above 1e-8 λ_max, λ_min = {float(ev[0]):.1e}")


def run(problem, weighting, cfg: dict, out: Path, device: str):
    return solvers.train(problem, weighting=weighting, optimizer=cfg["optimizer"],
                         steps=cfg["steps"], points=cfg["points"],
                         resample_every=cfg["resample_every"],
                         model_options=cfg["model_options"], ntk_every=cfg["ntk_every"],
                         probe_points=cfg["probe_points"], export=cfg["export"], out=out,
                         device=device, seed=0)


def report(name: str, result) -> dict:
    """Step 3: errors, weights and the NTK diagnostics recorded during training."""
    err = result.metrics["relative_l2"]["u"]
    print(f"\n{name}: relative L2 error of u = {err:.3e} "
          f"({result.metrics['steps']} steps, {result.metrics['wall_time_s']:.1f} s)")
    train = result.history["train"]
    first, last = train[0]["weights"], train[-1]["weights"]
    print("  weights  first: " + ", ".join(f"{k}={v:.3g}" for k, v in first.items()))
    print("           last:  " + ", ".join(f"{k}={v:.3g}" for k, v in last.items()))
    for rec in result.history["diagnostics"]:
        ang = rec["angles"].get("initial|residual")
        ang_text = (f", cos α(initial, residual): mean {ang['mean']:+.2f}, "
                    f"p5 {ang['p5']:+.2f}, p95 {ang['p95']:+.2f}" if ang else "")
        print(f"  step {rec['step']:>6}: λ_max(Θ*) = {rec['lambda_max']:.2e}, "
              f"kernel drift = {rec['drift']:.2f}{ang_text}")
    return {"relative_l2": err, "final_weights": last}


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = setup(args.quick)
    out = Path(args.out)
    problem = problems.get("convection", **cfg["params"])
    print(f"{problem.name}, beta = {problem.beta}, terms: {', '.join(problem.term_names())}")

    kernel_at_initialisation(problem, cfg)

    summary = {}
    for name, weighting in (("fixed", Fixed()),
                            ("trace", TraceNTK(every=cfg["every"], kind="mean"))):
        result = run(problem, weighting, cfg, out / name, args.device)
        summary[name] = report(name, result)

    ratio = summary["fixed"]["relative_l2"] / summary["trace"]["relative_l2"]
    print(f"\nerror with fixed weights / error with trace weights = {ratio:.2f}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"run folders and summary.json in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
