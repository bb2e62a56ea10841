"""The periodic benchmarks (allen-cahn, kdv, kuramoto-sivashinsky) in the suites, with the
published errors as references: linked only where the case trains at the published budget."""

from __future__ import annotations

import pytest

import problems
from solvers import _bench as B

PERIODIC = ("allen-cahn", "kdv", "kuramoto-sivashinsky")


def test_published_errors_are_recorded_with_their_sources():
    refs = B.load_references()
    want = {
        "jaxpi2023-allen-cahn-plain": {"plain PINN": 5.17e-1},
        "jaxpi2023-allen-cahn": {"jaxpi": 5.37e-5, "PirateNet": 2.24e-5},
        "wang2022causal-allen-cahn": {"causal training, modified MLP": 1.39e-4},
        "piratenets2024-kdv": {"PirateNet": 4.27e-4, "jaxpi": 1.96e-3},
        "wang2022causal-ks-regular": {"causal training, modified MLP": 3.49e-4},
        "jaxpi2023-ks-chaotic": {"jaxpi": 1.61e-1},
    }
    for rid, values in want.items():
        ref = refs[rid]
        assert dict(ref.values) == values and ref.source and ref.setup
        # the parameters name a valid instance of the problem (the published set-up)
        problem = problems.get(ref.problem, **ref.params)
        assert all(B._same(problem.params[k], v) for k, v in ref.params.items())


@pytest.mark.parametrize("suite", ["standard", "full"])
def test_suites_include_the_periodic_benchmarks(suite):
    s = B.load_suite(suite)
    cases = {c.label: c for c in s.cases}
    for name in PERIODIC:
        case = cases[name]
        assert case.time_dependent and "causal+trace" in case.methods
        assert not case.references  # not the published budget (no modified MLP in pinnk)
    if suite == "standard":
        assert cases["kuramoto-sivashinsky"].budget["steps"] < cases["kdv"].budget["steps"]
        return
    plain = cases["allen-cahn (jaxpi plain budget)"]
    assert [r.id for r in plain.references] == ["jaxpi2023-allen-cahn-plain"]
    b = plain.budget
    assert (b["width"], b["depth"], b["steps"], b["resample_every"]) == (256, 4, 200000, 1)
    assert b["points"] == {"residual": 4096, "initial": 512}
    assert b["optimizer"]["decay_steps"] == 2000 and b["optimizer"]["decay_rate"] == 0.9
    assert b["embedding"]["harmonics"] == 1
    chaotic = cases["kuramoto-sivashinsky (chaotic)"]
    assert chaotic.params["case"] == "chaotic" and chaotic.budget["depth"] == 5


def test_other_budget_references_are_listed_for_orientation():
    """A summary of the standard suite lists the published errors apart ("other budgets")."""
    s = B.load_suite("standard")
    summary = B.summarize([], B.plan(s, seeds=1), s)
    others = {(case.problem, ref.id) for case, ref in B._other_references(summary)}
    assert ("allen-cahn", "jaxpi2023-allen-cahn") in others
    assert ("kdv", "piratenets2024-kdv") in others
    assert ("kuramoto-sivashinsky", "wang2022causal-ks-regular") in others
    assert ("kuramoto-sivashinsky", "jaxpi2023-ks-chaotic") not in others  # other parameters
