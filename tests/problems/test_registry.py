"""The problem registry: names, construction with parameters, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

import pinnk
import problems

ALL = ["allen-cahn", "burgers-1d", "circle-product", "convection", "euler-smooth",
       "isentropic-vortex", "jacobian-regularization", "kdv", "kuramoto-sivashinsky", "lax",
       "poisson-1d", "riemann", "rotating-cone", "sin-cos", "sod", "variable-transport",
       "wave-1d"]


def test_names_lists_all_seventeen_sorted():
    assert problems.names() == ALL


def test_get_with_parameters():
    p = problems.get("convection", beta=30)
    assert isinstance(p, problems.Convection) and isinstance(p, pinnk.Problem)
    assert p.params == {"beta": 30.0, "periodic_embedding": False}
    assert problems.get("convection", beta=-4).beta == -4.0  # any finite real
    assert problems.get("convection", beta=0).term_names() == ["residual", "initial", "periodic"]
    assert problems.get("burgers-1d", nu=0.05).params == {"nu": 0.05}
    cone = problems.get("rotating-cone", T=1.0, center=[0.2, -0.1])
    assert cone.domain.upper == (1.0, 1.0, 1.0) and cone.params["center"] == (0.2, -0.1)
    r = problems.get("riemann", left=(1, 0, 1), right=(0.5, 0.1, 0.3), t_end=0.1, x0=0.3)
    assert r.domain.upper == (1.0, 0.1) and r.params["right"] == (0.5, 0.1, 0.3)
    assert problems.get("circle-product", derivative_labels=False).term_names() == ["value"]


@pytest.mark.parametrize("name", ALL)
def test_parameters_match_instances(name):
    defaults = problems.parameters(name)
    p = problems.get(name)
    assert set(p.params) == set(defaults)
    for k, v in defaults.items():
        assert p.params[k] == (tuple(v) if isinstance(v, (list, tuple)) else v)
    # the params round-trip
    again = problems.get(name, **p.params)
    assert again.params == p.params


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match=r"unknown problem 'heat'.*available problems: "
                                         r"allen-cahn, burgers-1d, circle-product"):
        problems.get("heat")
    with pytest.raises(ValueError, match=r"did you mean 'convection'"):
        problems.get("convektion")
    with pytest.raises(TypeError, match="name: expected a problem name"):
        problems.get(3)
    with pytest.raises(ValueError, match="unknown problem"):
        problems.describe("nope")


def test_unknown_parameter_lists_accepted():
    msg = r"convection: unknown parameter\(s\) speed; accepted parameters .*beta=30.0.*" \
          r"periodic_embedding=False"
    with pytest.raises(TypeError, match=msg):
        problems.get("convection", speed=3)
    with pytest.raises(ValueError, match=msg):  # a ParameterError is both
        problems.get("convection", speed=3)
    with pytest.raises(problems.ParameterError, match=r"sod: .*accepted parameters .*t_end"):
        problems.get("sod", left=(1, 0, 1))


@pytest.mark.parametrize("name,params,error,match", [
    ("riemann", {"left": (-1.0, 0.0, 1.0)}, ValueError, r"left: density must be > 0"),
    ("riemann", {"right": (0.125, 0.0, 0.0)}, ValueError, r"right: pressure must be > 0"),
    ("riemann", {"right": (0.125, 0.0, -0.1)}, ValueError, r"right: pressure must be > 0"),
    ("riemann", {"left": (1.0, 0.0)}, ValueError, r"left: expected three entries"),
    ("riemann", {"left": "sod"}, TypeError, r"left: expected a sequence \(rho, u, p\)"),
    ("riemann", {"left": (1.0, math.nan, 1.0)}, ValueError, r"left velocity: expected a finite"),
    ("riemann", {"left": (1.0, -20.0, 1.0), "right": (1.0, 20.0, 1.0)}, ValueError, r"vacuum"),
    ("riemann", {"x0": 1.0}, ValueError, r"x0: expected the discontinuity inside \(0, 1\)"),
    ("riemann", {"t_end": 0.0}, ValueError, r"t_end: expected a positive number"),
    ("riemann", {"gamma": 0.9}, ValueError, r"gamma: expected a ratio of specific heats > 1"),
    ("sod", {"time_exponent": -1.0}, ValueError, r"time_exponent: expected a positive"),
    ("sod", {"similarity_fraction": 1.5}, ValueError,
     r"similarity_fraction: expected a fraction in \[0, 1\], got 1.5"),
    ("lax", {"similarity_fraction": "half"}, TypeError, r"similarity_fraction: expected a real"),
    ("sod", {"initial_gap": -1e-3}, ValueError,
     r"initial_gap: expected h >= 0 and less than a quarter of min\(x0, 1 - x0\) = 0.5, got"),
    ("riemann", {"x0": 0.2, "initial_gap": 0.05}, ValueError,
     r"initial_gap: expected .* min\(x0, 1 - x0\) = 0.2, got 0.05"),
    ("lax", {"initial_gap": math.nan}, ValueError, r"initial_gap: expected a finite"),
    ("sod", {"initial_gap": "1e-3"}, TypeError, r"initial_gap: expected a real"),
    ("sod", {"initial_window": -1e-3}, ValueError,
     r"initial_window: expected a half-width delta >= 0 and at most half of min\(x0, 1 - x0\) = "
     r"0.5, got -0.001"),
    ("riemann", {"x0": 0.2, "initial_window": 0.15}, ValueError,
     r"initial_window: expected .* = 0.2, got 0.15"),
    ("lax", {"initial_window": math.nan}, ValueError, r"initial_window: expected a finite"),
    ("sod", {"initial_window": "0.01"}, TypeError, r"initial_window: expected a real"),
    ("convection", {"beta": math.inf}, ValueError, r"beta: expected a finite number"),
    ("convection", {"beta": math.nan}, ValueError, r"beta: expected a finite number"),
    ("convection", {"beta": "30"}, TypeError, r"beta: expected a real number"),
    ("convection", {"periodic_embedding": 1}, TypeError, r"periodic_embedding: expected True"),
    ("burgers-1d", {"nu": 0.0}, ValueError, r"nu: expected a positive number"),
    ("burgers-1d", {"nu": -0.01}, ValueError, r"nu: expected a positive number"),
    ("rotating-cone", {"T": -1.0}, ValueError, r"T: expected a positive number"),
    ("rotating-cone", {"center": (1.0, 0.0)}, ValueError, r"center: expected a point inside"),
    ("rotating-cone", {"center": 0.5}, ValueError, r"center: expected two coordinates"),
    ("rotating-cone", {"width": 0}, ValueError, r"width: expected a positive number"),
    ("variable-transport", {"T": 0}, ValueError, r"T: expected a positive number"),
    ("euler-smooth", {"amplitude": 1.0}, ValueError, r"amplitude: expected 0 < amplitude < 1"),
    ("isentropic-vortex", {"strength": 20.0}, ValueError, r"strength: .*too strong"),
    ("poisson-1d", {"a": 0}, ValueError, r"a: expected a non-zero number"),
    ("wave-1d", {"c": 0.0}, ValueError, r"c: expected a non-zero number"),
    ("circle-product", {"tangential": "yes"}, TypeError, r"tangential: expected True or False"),
    ("circle-product", {"angle_std": 0.0}, ValueError, r"angle_std: expected a positive"),
    ("sin-cos", {"half_width": -1.0}, ValueError, r"half_width: expected a positive"),
    ("jacobian-regularization", {"frequency": 0.0}, ValueError, r"frequency: expected a positive"),
])
def test_invalid_parameters(name, params, error, match):
    with pytest.raises(error, match=match):
        problems.get(name, **params)


@pytest.mark.parametrize("n,error,match", [
    (0, ValueError, r"n: expected an integer >= 1"),
    (-3, ValueError, r"n: expected an integer >= 1"),
    (2.5, TypeError, r"n: expected an integer"),
    ({"residual": 0}, ValueError, r"n\['residual'\]: expected an integer >= 1"),
    ({"bogus": 3}, ValueError, r"n: unknown term name\(s\) \['bogus'\]"),
])
def test_invalid_counts(n, error, match):
    with pytest.raises(error, match=match):
        problems.get("convection").terms(n)


def test_invalid_dtype():
    with pytest.raises(TypeError, match="dtype: expected a floating torch.dtype"):
        problems.get("poisson-1d").terms(4, dtype=torch.int64)


def test_descriptions():
    d = problems.descriptions()
    assert list(d) == ALL
    for name, line in d.items():
        assert line == problems.describe(name) and line and "\n" not in line and len(line) < 100


def test_problem_class():
    assert problems.problem_class("sod") is problems.Sod
    assert issubclass(problems.problem_class("lax"), problems.RiemannProblem)
