"""``pinnk report weights`` and ``solvers._report.report_weights``: the weight sweep, its files,
resuming, the trace-rule weight and one-line errors."""

import base64
import json
import math
import re
import shutil
from pathlib import Path

import pytest

import problems
from pinnk import Kernel
from pinnk.weighting import TraceNTK
from solvers import _report
from solvers._cli import main
from solvers._report import (Recommendation, TraceOutcome, WeightSetting, equivalent_weight,
                             parse_grid, parse_values, report_weights)
from solvers._train import Trainer, TrainingError
from cli_util import assert_one_line_error, run_cli

STEPS = 60
# every=20: the trace rule updates at steps 0, 20 and 40, so its final weight differs from init
ARGS = ["report", "weights", "poisson-1d", "--grid", "0.1:10:3", "--steps", str(STEPS),
        "--points", "residual=64", "--trace", "trace:every=20", "--quiet"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_json(path):
    return json.loads(Path(path).read_text())


def count_runs(monkeypatch):
    """Count Trainer.run calls (the training runs a command starts)."""
    calls = []
    original = Trainer.run

    def counting(self):
        calls.append(self.weighting.config())
        return original(self)

    monkeypatch.setattr(Trainer, "run", counting)
    return calls


def md_table(text):
    """The rows of the first markdown table: a list of cell lists (header first)."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", r)[1:-1]]
             for r in rows]
    return [cells[0]] + cells[2:]  # drop the |---| line


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One small sweep through the command line, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("report") / "sweep"
    code = main(ARGS + ["--out", str(out)])
    assert code == 0
    return out


# ------------------------------------------------------------------------------- the files
def test_command_writes_the_report_files(sweep):
    for name in ("report.html", "report.md", "report.json", "error.png", "loss.png",
                 "angles.png", "sweep.json"):
        assert (sweep / name).is_file(), name
    for name in ("error.png", "loss.png", "angles.png"):
        assert (sweep / name).read_bytes()[:8] == PNG_MAGIC
    runs = sorted(p.name for p in (sweep / "runs").iterdir())
    assert runs == ["fixed-000-s0.json", "fixed-001-s0.json", "fixed-002-s0.json",
                    "trace-s0.json"]
    assert not list(sweep.rglob(".*.tmp")) and not [p for p in sweep.rglob(".*") if p.is_file()]


def test_html_is_self_contained_with_the_pngs_embedded(sweep):
    page = (sweep / "report.html").read_text()
    assert not re.search(r"(src|href)\s*=\s*\"(https?:)?//", page), "remote resource"
    assert "http://" not in page and "https://" not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    embedded = {base64.b64decode(b) for b in images}
    on_disk = {(sweep / n).read_bytes() for n in ("error.png", "loss.png", "angles.png")}
    assert embedded == on_disk
    assert "<table>" in page and page.count("<tr") == 1 + 3 + 1


def test_table_rows_match_the_per_setting_results(sweep):
    rep = read_json(sweep / "report.json")
    rows = md_table((sweep / "report.md").read_text())
    header, body = rows[0], rows[1:]
    assert header[:2] == ["weight", "relative L2 error"]
    assert len(body) == 4 and body[-1][0].startswith("trace rule")
    assert rep["table"]["rows"] == body  # markdown and JSON carry the same table
    col_loss = header.index("final loss (weighted)")
    col_angle = header.index("cos α(boundary, residual) mean [p5, p95]")
    expected = [0.1, 1.0, 10.0]
    for k, row in enumerate(body[:3]):
        stored = read_json(sweep / "runs" / f"fixed-{k:03d}-s0.json")
        assert stored["status"] == "ok" and stored["seed"] == 0
        assert stored["weight"] == pytest.approx(expected[k])
        assert stored["weights_final"] == {"residual": 1.0, "boundary": stored["weight"]}
        assert float(row[0]) == pytest.approx(stored["weight"], rel=1e-3)
        assert float(row[1]) == pytest.approx(stored["relative_l2"]["u"], rel=1e-3)
        assert float(row[col_loss]) == pytest.approx(stored["final_loss"], rel=1e-3)
        angles = stored["diagnostics_final"]["angles"]["boundary|residual"]
        mean, p5, p95 = map(float, re.findall(r"[-+]\d\.\d+", row[col_angle]))
        assert (mean, p5, p95) == pytest.approx((angles["mean"], angles["p5"], angles["p95"]),
                                                abs=1e-3)
        setting = rep["settings"][k]
        assert setting["relative_l2"] == pytest.approx(stored["relative_l2"]["u"])
        assert setting["runs"][0]["key"] == stored["key"]
    best = min(rep["settings"], key=lambda s: s["relative_l2"])
    assert rep["recommendation"]["best_weight"] == best["weight"]
    assert [r[-1] for r in body[:3]].count("best") == 1
    trace = read_json(sweep / "runs" / "trace-s0.json")
    assert float(body[-1][1]) == pytest.approx(trace["relative_l2"]["u"], rel=1e-3)


def test_trace_weight_is_the_kernel_trace_rule_of_the_trace_run(sweep):
    rep = read_json(sweep / "report.json")
    stored = read_json(sweep / "runs" / "trace-s0.json")
    problem = problems.get("poisson-1d")
    points = rep["points"]
    assert points == {"residual": 64, "boundary": 2}
    # at init: Kernel.trace_weights on the freshly built network and points of seed 0
    trainer = Trainer(problem, weighting=TraceNTK(every=20), steps=STEPS, points=points,
                      seed=0, device="cpu", ntk_every=0, export=False)
    lam = Kernel(trainer.model, trainer.terms).trace_weights("mean")
    w_init = float(lam[1] / lam[0])  # boundary / residual (the problem's term order)
    assert rep["trace"]["weight_init"] == pytest.approx(w_init, rel=1e-6)
    assert stored["weights_init"]["boundary"] / stored["weights_init"]["residual"] == \
        pytest.approx(w_init, rel=1e-12)
    # at the end: the weights of the last update (step 40), from the network after 40 steps
    captured = {}

    def grab(tr):
        if tr.step == 39:  # the callback sees the parameters after the step-39 update
            captured["lam"] = Kernel(tr.model, tr.terms).trace_weights("mean")

    Trainer(problem, weighting=TraceNTK(every=20), steps=41, points=points, seed=0,
            device="cpu", ntk_every=0, export=False, callback=grab).run()
    w_final = float(captured["lam"][1] / captured["lam"][0])
    assert rep["trace"]["weight_final"] == pytest.approx(w_final, rel=1e-5)
    assert abs(math.log10(w_final / w_init)) > 1e-4  # the rule did move the weight
    fin = stored["weights_final"]
    assert rep["trace"]["weight_final"] == pytest.approx(fin["boundary"] / fin["residual"],
                                                         rel=1e-12)
    assert rep["recommendation"]["trace_weight"] == rep["trace"]["weight_final"]
    assert rep["recommendation"]["trace_error"] == pytest.approx(stored["relative_l2"]["u"])
    md = (sweep / "report.md").read_text()
    assert f"trace rule ({w_final:.4g})" in md and f"at init {w_init:.4g}" in md


# ------------------------------------------------------------------------------- resuming
def test_a_repeated_command_trains_nothing(sweep, tmp_path, monkeypatch, capsys):
    out = tmp_path / "again"
    shutil.copytree(sweep, out)
    before = read_json(out / "report.json")
    calls = count_runs(monkeypatch)
    code, stdout, err = run_cli(capsys, *ARGS, "--out", out)
    assert code == 0, err
    assert calls == []
    assert "trained 0, reused 4" in stdout
    after = read_json(out / "report.json")
    assert after["table"] == before["table"] and after["settings"] == before["settings"]

    # a run lost (e.g. interrupted before it finished) is the only one trained again
    (out / "runs" / "fixed-001-s0.json").unlink()
    code, stdout, err = run_cli(capsys, *ARGS, "--out", out)
    assert code == 0, err
    assert calls == [{"kind": "fixed", "weights": {"boundary": 1.0}}]
    assert "trained 1, reused 3" in stdout
    assert read_json(out / "report.json")["table"] == before["table"]


def test_other_options_in_the_same_folder_are_refused_unless_forced(sweep, tmp_path,
                                                                    monkeypatch, capsys):
    out = tmp_path / "other"
    shutil.copytree(sweep, out)
    calls = count_runs(monkeypatch)
    other = [a if a != str(STEPS) else "40" for a in ARGS]
    code, _, err = run_cli(capsys, *other, "--out", out)
    assert code == 2
    assert_one_line_error(err, f"out: '{out}' holds a weight sweep with other options",
                          "steps: 60 there, 40 here", "--force")
    assert calls == []
    code, _, err = run_cli(capsys, *ARGS[:3], "--values", "0.1,1", "--steps", STEPS,
                           "--out", out, "--quiet")
    assert code == 2
    assert_one_line_error(err, "holds a weight sweep with other options", "points")
    code, stdout, err = run_cli(capsys, *other, "--out", out, "--force")
    assert code == 0, err
    assert len(calls) == 4 and "trained 4, reused 0" in stdout
    assert read_json(out / "report.json")["steps"] == 40
    assert read_json(out / "sweep.json")["steps"] == 40


# ------------------------------------------------------------------------------- the API
def test_api_returns_the_structured_result(tmp_path, monkeypatch):
    calls = count_runs(monkeypatch)
    rep = report_weights("poisson-1d", term="boundary", values=[0.5, 2.0], steps=20,
                         points={"residual": 32}, seeds=2, trace="trace:every=10")
    assert calls and len(calls) == 2 * 2 + 2
    assert rep.out is None and rep.files == [] and rep.trained == 6 and rep.reused == 0
    assert rep.terms == ["boundary"] and rep.others == ["residual"]
    assert rep.values == [0.5, 2.0] and rep.seeds == [0, 1] and rep.steps == 20
    assert [s.weight for s in rep.settings] == [0.5, 2.0]
    for s in rep.settings:
        assert isinstance(s, WeightSetting) and s.failed == 0 and len(s.runs) == 2
        errors = [r["error"] for r in s.runs]
        assert s.relative_l2 == pytest.approx(math.sqrt(errors[0] * errors[1]))
        assert s.error_range == (min(errors), max(errors))
        assert set(s.angles) == {"boundary|residual"}
    assert isinstance(rep.trace, TraceOutcome) and len(rep.trace.runs) == 2
    per_seed = [r["weights_final"]["boundary"] / r["weights_final"]["residual"]
                for r in rep.trace.runs]
    assert rep.trace.weight_final == pytest.approx(math.sqrt(per_seed[0] * per_seed[1]))
    assert isinstance(rep.recommendation, Recommendation)
    assert rep.recommendation.best_weight in (0.5, 2.0)
    json.dumps(rep.to_dict(), allow_nan=False)  # JSON-able as it is


def test_a_diverged_setting_is_reported_and_never_recommended(tmp_path, monkeypatch):
    original = Trainer.run

    def failing(self):
        if self.weighting.config().get("weights", {}).get("boundary") == 10.0:
            self.step = 3
            raise TrainingError("loss term 'residual' is nan at step 3; training stopped")
        return original(self)

    monkeypatch.setattr(Trainer, "run", failing)
    rep = report_weights("poisson-1d", values="0.1,10", steps=20, points=32,
                         out=tmp_path / "r")
    bad = rep.settings[1]
    assert bad.failed == 1 and bad.relative_l2 is None
    assert bad.runs[0]["status"] == "failed" and "nan at step 3" in bad.runs[0]["message"]
    assert rep.recommendation.best_weight == 0.1
    rows = md_table((tmp_path / "r" / "report.md").read_text())
    assert rows[2][0] == "10" and rows[2][1] == "—" and "1 seed(s) diverged" in rows[2][-1]
    stored = read_json(tmp_path / "r" / "runs" / "fixed-001-s0.json")
    assert stored["status"] == "failed"


# ------------------------------------------------------------------- pieces of the design
def test_grid_and_values_parsing():
    assert parse_grid("0.01:100:5") == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0])
    assert parse_grid((1, 10, 2)) == pytest.approx([1.0, 10.0])
    assert parse_values("10, 0.1,1") == [0.1, 1.0, 10.0]
    assert parse_values([2, 0.5]) == [0.5, 2.0]
    for bad, msg in (("1:10", "expected LO:HI:N"), ("a:10:3", "expected numbers"),
                     ("1:10:x", "expected an integer N"), ("0:10:3", "positive"),
                     ("-1:10:3", "positive"), ("10:1:3", "LO < HI"), ("1:10:1", "N >= 2"),
                     ("1:inf:3", "finite")):
        with pytest.raises(ValueError, match=f"grid: .*{re.escape(msg)}"):
            parse_grid(bad)
    for bad, msg in (("1,0", "positive"), ("1,-3", "positive"), ("1,x", "numbers"),
                     ("1,1", "duplicate"), ([], "at least one"), ("1,nan", "finite")):
        with pytest.raises(ValueError, match=f"values: .*{msg}"):
            parse_values(bad)
    with pytest.raises(TypeError, match="values"):
        parse_values(3.0)


def test_default_terms_and_the_equivalent_weight():
    assert _report.default_terms(problems.get("poisson-1d")) == ["boundary"]
    assert _report.default_terms(problems.get("burgers-1d")) == ["initial", "boundary"]
    assert _report.default_terms(problems.get("circle-product")) == ["d_x1", "d_x2"]
    lam = {"residual": 4.0, "initial": 2.0, "boundary": 8.0}
    assert equivalent_weight(lam, ["boundary"], ["residual"]) == pytest.approx(2.0)
    assert equivalent_weight(lam, ["initial", "boundary"], ["residual"]) == pytest.approx(1.0)
    assert equivalent_weight(lam, ["boundary"], ["residual", "initial"]) == \
        pytest.approx(8.0 / math.sqrt(8.0))
    assert equivalent_weight({"a": 0.0, "b": 1.0}, ["a"], ["b"]) is None


def _trace(weight, error):
    return TraceOutcome(weight_init=weight, weight_final=weight, weights_init={},
                        weights_final={}, relative_l2=error, relative_l2_outputs={},
                        error_range=None, final_loss=None, term_loss=None, angles={}, failed=0,
                        runs=[], spec={})


def _settings(errors):
    return [WeightSetting(weight=w, weights={}, relative_l2=e, relative_l2_outputs={},
                          error_range=None, final_loss=None, term_loss=None, angles={},
                          failed=0 if e is not None else 1, runs=[])
            for w, e in errors]


def test_recommendation_compares_the_trace_rule_with_the_best_weight():
    grid = _settings([(0.1, 0.4), (1.0, 0.1), (10.0, 0.3)])
    near = _report._recommend(grid, _trace(0.5, 0.105), tolerance=10)
    assert near.best_weight == 1.0 and near.within is True and near.at_edge is None
    assert near.gap == pytest.approx(0.05) and near.decades == pytest.approx(math.log10(0.5))
    assert "within 10% of the best" in near.text
    far = _report._recommend(grid, _trace(0.5, 0.2), tolerance=10)
    assert far.within is False and "not within 10%" in far.text and "prefer w = 1" in far.text
    better = _report._recommend(grid, _trace(3.0, 0.05), tolerance=10)
    assert better.gap < 0 and "beats every grid weight" in better.text
    edge = _report._recommend(_settings([(0.1, 0.05), (1.0, 0.1), (10.0, None)]),
                              _trace(1.0, 0.1), tolerance=50)
    assert edge.best_weight == 0.1 and edge.at_edge == "low" and "extend the grid" in edge.text
    assert edge.within is False  # 100% above the best is not within 50%


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("argv, fragments", [
    (["poisson-1d", "--term", "nope"],
     ["term: unknown term 'nope' of poisson-1d; its terms are residual, boundary"]),
    (["poisson-1d", "--term", "residual", "--term", "boundary"],
     ["term: sweeping every term", "leave at least one term out"]),
    (["sin-cos"], ["term: sin-cos has a single loss term"]),
    (["poisson-1d", "--grid", "1:0.1:3"], ["--grid: expected LO < HI"]),
    (["poisson-1d", "--grid", "0.1:10"], ["--grid: expected LO:HI:N"]),
    (["poisson-1d", "--grid", "0.1:10:1"], ["--grid: expected N >= 2"]),
    (["poisson-1d", "--grid", "0:10:3"], ["--grid: the weights must be positive"]),
    (["poisson-1d", "--values", "1,-2"], ["--values: the weights must be positive", "-2"]),
    (["poisson-1d", "--values", "0,1"], ["--values: the weights must be positive", "got 0"]),
    (["poisson-1d", "--values", "1,two"], ["--values: expected comma-separated numbers"]),
    (["poisson-1d", "--grid", "1:10:3", "--values", "1"], ["not allowed with argument"]),
    (["poissn"], ["unknown problem 'poissn'", "did you mean 'poisson-1d'"]),
    (["poisson-1d", "--param", "b=1"], ["poisson-1d: unknown parameter(s) b"]),
    (["poisson-1d", "--trace", "fixed"], ["trace: expected a trace-rule weighting"]),
    (["poisson-1d", "--points", "foo=3"], ["points: unknown term name(s) ['foo']"]),
    (["poisson-1d", "--seeds", "0"], ["seeds: expected an integer >= 1"]),
])
def test_bad_options_exit_2_with_one_line(argv, fragments, tmp_path, monkeypatch, capsys):
    calls = count_runs(monkeypatch)
    out = tmp_path / "never"
    code, _, err = run_cli(capsys, "report", "weights", *argv, "--out", out, "--quiet")
    assert code == 2
    assert_one_line_error(err, *fragments)
    assert calls == [] and not out.exists()


def test_report_without_a_kind_is_an_error(capsys):
    code, _, err = run_cli(capsys, "report")
    assert code == 2
    assert_one_line_error(err, "report: a report kind is required: one of weights")
