"""``pinnk bench``: suites as data, the three executors, resume, failures, summaries, CLI errors,
and ``pinnk bench perf``."""

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import pinnk
import problems
from solvers import _bench as B
from solvers._cli import main
from cli_util import assert_one_line_error, default_sigint, run_cli

REPO = Path(__file__).resolve().parents[2]

# A suite small enough to run many times: 10 runs of 30 steps on tiny networks.
TINY = """
name = "tiny"
seeds = 2
[methods]
fixed = "fixed"
trace = "trace:every=10"
causal = "causal:epsilon=1,chunks=4+trace:every=10"
[defaults]
methods = ["fixed", "trace"]
time_methods = ["causal"]
steps = 30
width = 8
depth = 1
probe_points = 8
[[cases]]
problem = "poisson-1d"
points = 16
[[cases]]
problem = "convection"
points = 16
"""


def tiny_suite(tmp_path, extra="", name="tiny.toml"):
    path = tmp_path / name
    path.write_text(TINY + extra)
    return path


def rows_of(out_dir):
    return B.ResultsFile(Path(out_dir) / B.RESULTS_NAME).read()


@pytest.fixture
def count_runs(monkeypatch):
    """Count the trainings that actually happen (the local executor runs in this process)."""
    calls = []
    real = B._train_run

    def counting(task):
        calls.append((task["case"], task["method"], task["seed"]))
        return real(task)

    monkeypatch.setattr(B, "_train_run", counting)
    return calls


# ----------------------------------------------------------------------------- suites as data
def test_standard_suite_covers_every_problem_of_the_zoo():
    suite = B.load_suite("standard")
    assert {c.problem for c in suite.cases} == set(problems.names())
    assert suite.seeds == 2


@pytest.mark.parametrize("name", ["quick", "standard", "full"])
def test_every_suite_runs_fixed_trace_gradnorm_and_causal_where_time_dependent(name):
    suite = B.load_suite(name)
    assert name in B.suite_names()
    kinds = {m: [p.split(":")[0] for p in spec.split("+")] for m, spec in suite.methods.items()}
    for case in suite.cases:
        used = [k for m in case.methods for k in kinds[m]]
        for kind in ("fixed", "trace", "gradnorm"):
            assert [kind] in [kinds[m] for m in case.methods], (name, case.label, kind)
        time_dep = problems.get(case.problem, **case.params).time_index is not None
        assert ("causal" in used) == time_dep, (name, case.label)
        assert case.time_dependent == time_dep
        # the budget is resolved completely (what the key hashes)
        assert set(B.BUDGET_KEYS) <= set(case.budget)
        assert set(case.budget["points"]) == set(problems.get(case.problem, **case.params).term_names())


def test_references_stand_only_where_the_budget_is_the_published_one():
    refs = B.load_references()
    assert {"krishnapriyan2021-convection-beta30", "pinnacle2023-wave1d",
            "pinnacle2023-burgers1d"} <= set(refs)
    conv = refs["krishnapriyan2021-convection-beta30"]
    assert dict(conv.values) == {"plain PINN": 8.97e-1, "curriculum regularization": 2.02e-2}
    assert dict(refs["pinnacle2023-wave1d"].values) == {"plain PINN": 5.88e-1,
                                                        "PINN-NTK": 9.79e-2}
    assert dict(refs["pinnacle2023-burgers1d"].values) == {"plain PINN": 1.45e-2}
    full = B.load_suite("full")
    linked = {c.label: [r.id for r in c.references] for c in full.cases if c.references}
    assert linked["convection"] == ["krishnapriyan2021-convection-beta30"]
    assert full.case("convection").budget["width"] == 50
    assert full.case("convection").budget["depth"] == 4
    assert full.case("wave-1d (PINNacle budget)").budget["steps"] == 20000
    for name in ("quick", "standard"):  # reduced budgets: no reference column
        assert not any(c.references for c in B.load_suite(name).cases)


@pytest.mark.parametrize("extra, fragment", [
    ("bogus = 1\n", "unknown key(s) bogus"),
    ('[[cases]]\nproblem = "sin-cos"\nmethods = ["causal"]\n', "has no time coordinate"),
    ('[[cases]]\nproblem = "sin-cos"\nmethods = ["magic"]\n', "unknown method 'magic'"),
    ('[[cases]]\nproblem = "no-such-problem"\n', "unknown problem 'no-such-problem'"),
    ('[[cases]]\nproblem = "sin-cos"\nsteps = 0\n', "steps"),
    ('[[cases]]\nproblem = "sin-cos"\nwhatever = 3\n', "unknown key(s) whatever"),
    ('[[cases]]\nproblem = "sin-cos"\npoints = { nope = 3 }\n', "nope"),
    ('[[cases]]\nproblem = "sin-cos"\noptimizer = "sgd"\n', "optimizer"),
    ('[[cases]]\nproblem = "convection"\nparams = { beta = 5.0 }\nlabel = "c5"\n'
     'references = ["krishnapriyan2021-convection-beta30"]\n', "is for convection"),
    ('[[cases]]\nproblem = "sin-cos"\nreferences = ["nobody2020"]\n', "unknown reference"),
    ('[[cases]]\nproblem = "poisson-1d"\n', "two cases are labelled 'poisson-1d'"),
])
def test_bad_suite_files_are_rejected_naming_the_file(tmp_path, extra, fragment):
    path = tiny_suite(tmp_path, extra)
    if extra.startswith("bogus"):
        path.write_text(extra + TINY)
    with pytest.raises(B.BenchError, match="tiny.toml") as info:
        B.load_suite(path)
    assert fragment in str(info.value)


def test_run_keys_hash_problem_params_method_seed_and_budget(tmp_path):
    suite = B.load_suite(tiny_suite(tmp_path))
    specs = B.plan(suite)
    assert len(specs) == 2 * 2 + 3 * 2 and len({s.key for s in specs}) == len(specs)
    # explicit default parameters, the same budget written differently: the same runs
    text = TINY.replace('problem = "poisson-1d"\npoints = 16',
                        'problem = "poisson-1d"\nparams = { a = 4.0 }\n'
                        'points = { residual = 16, boundary = 16 }')
    (tmp_path / "same.toml").write_text(text)
    same = B.load_suite(tmp_path / "same.toml")
    assert [s.key for s in B.plan(same)] == [s.key for s in specs]
    # another budget, method spec or seed: other runs
    (tmp_path / "longer.toml").write_text(TINY.replace("steps = 30", "steps = 31"))
    longer = B.plan(B.load_suite(tmp_path / "longer.toml"))
    assert not {s.key for s in longer} & {s.key for s in specs}
    assert {s.budget_hash for s in longer}.isdisjoint({s.budget_hash for s in specs})
    (tmp_path / "every.toml").write_text(TINY.replace('trace = "trace:every=10"',
                                                      'trace = "trace:every=5"'))
    other = {(s.case, s.method, s.seed): s.key for s in B.plan(B.load_suite(tmp_path /
                                                                            "every.toml"))}
    for s in specs:
        assert (other[(s.case, s.method, s.seed)] == s.key) == (s.method != "trace")


def test_plan_selects_problems_methods_and_seeds(tmp_path):
    suite = B.load_suite(tiny_suite(tmp_path))
    specs = B.plan(suite, problems=["convection"], methods=["causal"], seeds=3)
    assert [(s.case, s.method, s.seed) for s in specs] == [("convection", "causal", k)
                                                           for k in range(3)]
    with pytest.raises(B.BenchError, match="is not in suite 'tiny'"):
        B.plan(suite, problems=["lax"])
    with pytest.raises(B.BenchError, match="not a problem of the zoo"):
        B.plan(suite, problems=["lux"])
    with pytest.raises(B.BenchError, match="method 'gradnorm'"):
        B.plan(suite, methods=["gradnorm"])
    with pytest.raises(B.BenchError, match="empty"):
        B.plan(suite, problems=["poisson-1d"], methods=["causal"])
    with pytest.raises(B.BenchError, match="seeds"):
        B.plan(suite, seeds=0)
    with pytest.raises(TypeError, match="seeds"):
        B.plan(suite, seeds="2")


# ------------------------------------------------------------------------------ results file
def test_results_file_ignores_a_torn_last_line_and_appends_cleanly_after_it(tmp_path):
    f = B.ResultsFile(tmp_path / "r.jsonl")
    assert f.read() == []
    f.append({"key": "a", "x": float("nan")})
    f.append({"key": "b", "x": (1, 2)})
    with open(f.path, "ab") as fh:
        fh.write(b'{"key": "c", "x": 1')  # a crash in the middle of a write
    assert [r["key"] for r in f.read()] == ["a", "b"]
    assert f.read()[0]["x"] is None and f.read()[1]["x"] == [1, 2]
    f.append({"key": "d"})
    lines = f.path.read_text().splitlines()
    assert [json.loads(s)["key"] for s in lines] == ["a", "b", "d"]
    with open(f.path, "ab") as fh:  # damage in the middle is an error, not silently skipped
        fh.write(b"garbage\n")
    f.append({"key": "e"})
    with pytest.raises(B.BenchError, match="line 4"):
        f.read()


def test_ctrl_c_during_an_append_waits_for_the_complete_line(tmp_path, monkeypatch,
                                                             sigint_default):
    f = B.ResultsFile(tmp_path / "r.jsonl")
    real_fsync = os.fsync

    def interrupted_fsync(fd):
        os.kill(os.getpid(), signal.SIGINT)  # arrives between the write and the fsync
        real_fsync(fd)

    monkeypatch.setattr(B.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        f.append({"key": "a", "pad": "x" * 10000})
    monkeypatch.setattr(B.os, "fsync", real_fsync)
    assert f.path.read_bytes().endswith(b"\n")
    assert [r["key"] for r in f.read()] == ["a"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---------------------------------------------------------------------- the quick suite, local
@pytest.fixture(scope="module")
def quick_local(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick-local"
    code = main(["bench", "--suite", "quick", "--executor", "local", "--out", str(out),
                 "--quiet"])
    return code, out


def test_quick_suite_end_to_end_in_process(quick_local):
    code, out = quick_local
    assert code == 0
    suite = B.load_suite("quick")
    specs = B.plan(suite)
    rows = rows_of(out)
    assert [r["key"] for r in rows] == [s.key for s in specs]
    for s, r in zip(specs, rows):
        prob = problems.get(s.problem, **s.params)
        assert r["status"] == "ok" and r["reason"] is None, r
        assert (r["problem"], r["method"], r["seed"], r["weighting"]) == \
            (s.problem, s.method, s.seed, s.weighting)
        assert set(r["relative_l2"]) == set(prob.output_names)
        assert all(math.isfinite(v) and v > 0 for v in r["relative_l2"].values())
        assert r["steps"] == s.budget["steps"] and r["budget"] == s.budget
        assert r["device"] == "cpu" and r["threads"] == 1
        assert set(r["final_weights"]) == set(prob.term_names())
        assert r["diagnostics_step"] == s.budget["steps"]
        assert isinstance(r["lambda_min"], float) and r["lambda_max"] >= r["lambda_min"]
        assert isinstance(r["angles"], dict)
        assert all({"mean", "p50"} <= set(v) for v in r["angles"].values())
        if s.problem in ("convection", "burgers-1d"):  # a residual and regular terms
            assert any("residual" in pair for pair in r["angles"])
        assert r["versions"]["pinnk"] == pinnk.__version__
        assert r["versions"]["torch"] == torch.__version__
        assert r["wall_time_s"] > 0 and r["pid"] == os.getpid()
    for name in ("summary.md", "summary.csv"):
        assert (out / name).stat().st_size > 0
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "summary.md").read_text()
    for case in suite.cases:
        assert f"| {case.label} |" in md
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_summary_table_matches_the_rows(quick_local, tmp_path, capsys):
    # two seeds so that the standard deviation is exercised, and the quick suite's own summary
    path = tiny_suite(tmp_path)
    code, _, _ = run_cli(capsys, "bench", "--suite", path, "--out", tmp_path / "t", "--quiet")
    assert code == 0
    for out, suite in ((tmp_path / "t", B.load_suite(path)),
                       (quick_local[1], B.load_suite("quick"))):
        rows = rows_of(out)
        table = B.read_summary_csv(out / "summary.csv")
        groups = {}
        for r in rows:
            for o, v in r["relative_l2"].items():
                groups.setdefault((r["case"], r["method"], o), []).append(v)
        assert {(t["case"], t["method"], t["output"]) for t in table} == set(groups)
        for t in table:
            vals = groups[(t["case"], t["method"], t["output"])]
            assert int(t["n_ok"]) == len(vals) and int(t["n_failed"]) == 0
            assert float(t["mean"]) == pytest.approx(statistics.fmean(vals), rel=1e-12)
            if len(vals) > 1:
                assert float(t["std"]) == pytest.approx(statistics.stdev(vals), rel=1e-12)
                assert float(t["std"]) > 0
            else:
                assert t["std"] == ""
            assert float(t["min"]) == min(vals) and float(t["max"]) == max(vals)
            # the NTK diagnostics beside the error: λ_min(Θ*) and the mean cos α of the rows
            runs = [r for r in rows if (r["case"], r["method"]) == (t["case"], t["method"])]
            lmins = [r["lambda_min"] for r in runs if r.get("lambda_min") is not None]
            assert float(t["mean_lambda_min"]) == pytest.approx(statistics.fmean(lmins),
                                                                rel=1e-12)
            cos = [statistics.fmean(s["mean"] for s in r["angles"].values()) for r in runs
                   if r.get("angles")]
            if cos:
                assert float(t["mean_cos"]) == pytest.approx(statistics.fmean(cos), rel=1e-12)
                assert -1.0 <= float(t["mean_cos"]) <= 1.0
            else:
                assert t["mean_cos"] == ""
        md = (out / "summary.md").read_text()
        assert "## NTK diagnostics at the end of training" in md
        for case in suite.cases:
            mine = [t for t in table if t["case"] == case.label and t["output"] == case.output]
            best = min(mine, key=lambda t: float(t["mean"]))
            assert [t["method"] for t in mine if t["best"] == "1"] == [best["method"]]
            line = next(ln for ln in md.splitlines() if ln.startswith(f"| {case.label} |"))
            bold = [c.strip() for c in line.split("|") if c.strip().startswith("**")]
            assert len(bold) == 1 and bold[0].startswith(f"**{float(best['mean']):.2e}")


# -------------------------------------------------------------------- the other executors
def _same_rows(rows, reference):
    ref = {r["key"]: r for r in reference}
    for r in rows:
        base = ref[r["key"]]
        assert r["status"] == "ok", r
        for o, v in base["relative_l2"].items():
            assert r["relative_l2"][o] == pytest.approx(v, rel=1e-6)
        for k, v in base["final_weights"].items():
            assert r["final_weights"][k] == pytest.approx(v, rel=1e-6)
        assert r["lambda_min"] == pytest.approx(base["lambda_min"], rel=1e-4, abs=1e-9)
        assert r["pid"] != os.getpid()  # ran in a worker process


def test_process_executor_gives_the_same_rows(quick_local, tmp_path, capsys):
    out = tmp_path / "proc"
    code, stdout, _ = run_cli(capsys, "bench", "--suite", "quick", "--executor", "process",
                              "--jobs", "2", "--out", out)
    assert code == 0, stdout
    rows, local = rows_of(out), rows_of(quick_local[1])
    assert len(rows) == len(local) and f"[{len(local)}/{len(local)}]" in stdout
    _same_rows(rows, local)


def test_ray_executor_gives_the_same_rows(quick_local, tmp_path, capsys):
    ray = pytest.importorskip("ray")
    out = tmp_path / "ray"
    code, stdout, _ = run_cli(capsys, "bench", "--suite", "quick", "--executor", "ray", "--jobs",
                              "2", "--out", out)
    assert code == 0, stdout
    rows, local = rows_of(out), rows_of(quick_local[1])
    assert len(rows) == len(local)
    _same_rows(rows, local)
    assert not ray.is_initialized()  # the local instance was torn down


def test_executors_are_objects_with_checked_arguments(monkeypatch):
    assert isinstance(B.LocalExecutor(), B.Executor)
    assert isinstance(B.ProcessExecutor(jobs=1), B.Executor)
    for bad, exc in ((lambda: B.make_executor("dask"), ValueError),
                     (lambda: B.LocalExecutor(jobs=2), ValueError),
                     (lambda: B.ProcessExecutor(jobs=0), ValueError),
                     (lambda: B.ProcessExecutor(jobs=1.5), TypeError),
                     (lambda: B.ProcessExecutor(jobs=1, threads=0), ValueError),
                     (lambda: B.make_executor("process", address="auto"), ValueError)):
        with pytest.raises(exc):
            bad()
    with pytest.raises(TypeError, match="executor"):
        B.run_suite([], "unused", executor="local")
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(ImportError, match=r"pinnk\[ray\]"):
        B.make_executor("ray", jobs=1)


def test_missing_ray_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _, err = run_cli(capsys, "bench", "--suite", tiny_suite(tmp_path), "--executor",
                           "ray", "--out", tmp_path / "o")
    assert code == 2
    assert_one_line_error(err, "pip install 'pinnk[ray]'")


# ------------------------------------------------------------------------- resume, failures
def test_resume_skips_finished_runs(tmp_path, count_runs, capsys):
    suite = B.load_suite(tiny_suite(tmp_path))
    specs = B.plan(suite)
    out = tmp_path / "out"

    def stop_after_three(k, n, row):
        if k == 3:
            raise KeyboardInterrupt  # Ctrl-C between two runs

    with pytest.raises(KeyboardInterrupt):
        B.run_suite(specs, out, B.LocalExecutor(), progress=stop_after_three)
    assert len(count_runs) == 3 and len(rows_of(out)) == 3
    with open(out / B.RESULTS_NAME, "ab") as fh:
        fh.write(b'{"key": "torn')  # and a crash in the middle of a line
    report = B.run_suite(specs, out, B.LocalExecutor())
    assert len(count_runs) == 10 and (report.ran, report.skipped) == (7, 3)
    assert [r["key"] for r in report.rows] == [s.key for s in specs]
    lines = (out / B.RESULTS_NAME).read_text().splitlines()
    assert len(lines) == 10 and all(json.loads(ln)["status"] == "ok" for ln in lines)
    # the CLI: nothing left to run
    code, stdout, _ = run_cli(capsys, "bench", "--suite", suite.path, "--out", out)
    assert code == 0 and len(count_runs) == 10
    assert "ran 0, skipped 10" in stdout
    # more seeds: only the new ones run
    code, _, _ = run_cli(capsys, "bench", "--suite", suite.path, "--out", out, "--seeds", "3",
                         "--problems", "poisson-1d", "--quiet")
    assert code == 0 and count_runs[10:] == [("poisson-1d", "fixed", 2),
                                             ("poisson-1d", "trace", 2)]


def test_a_failing_run_is_recorded_and_the_suite_goes_on(tmp_path, count_runs, monkeypatch,
                                                         capsys):
    path = tiny_suite(tmp_path, '[[cases]]\nlabel = "poisson-1d (diverging)"\n'
                      'problem = "poisson-1d"\noptimizer = "adam:lr=1e30"\npoints = 16\n')
    inner = B._train_run

    def flaky(task):
        if task["case"] == "convection" and task["seed"] == 1 and task["method"] == "trace":
            raise RuntimeError("boom")
        return inner(task)

    monkeypatch.setattr(B, "_train_run", flaky)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "bench", "--suite", path, "--out", out)
    assert code == 1
    rows = rows_of(out)
    assert len(rows) == 14 and len(count_runs) == 13  # one raised before training
    failed = [r for r in rows if r["status"] == "failed"]
    assert {(r["case"], r["method"], r["seed"]) for r in failed} == \
        {("poisson-1d (diverging)", m, s) for m in ("fixed", "trace") for s in (0, 1)} | \
        {("convection", "trace", 1)}
    for r in failed:
        assert r["relative_l2"] is None
        if r["case"] == "convection":
            assert r["reason"] == "RuntimeError: boom"
        else:
            assert r["reason"].startswith("TrainingError: loss term")
    assert "FAILED: RuntimeError: boom" in stdout
    md = (out / "summary.md").read_text()
    assert "## Failed runs" in md and "convection / trace: seed 1: RuntimeError: boom" in md
    assert "| poisson-1d (diverging) | u | failed (2) | failed (2) |" in md
    table = {(t["case"], t["method"]): t for t in B.read_summary_csv(out / "summary.csv")}
    assert (table[("convection", "trace")]["n_ok"], table[("convection", "trace")]["n_failed"]) \
        == ("1", "1")
    # a rerun counts failed runs as done; --retry-failed runs them again
    monkeypatch.setattr(B, "_train_run", inner)  # the counting trainer, no more failures
    n = len(count_runs)
    assert run_cli(capsys, "bench", "--suite", path, "--out", out)[0] == 1
    assert len(count_runs) == n
    code, _, _ = run_cli(capsys, "bench", "--suite", path, "--out", out, "--retry-failed",
                         "--problems", "convection")
    assert code == 0 and len(count_runs) == n + 1 and count_runs[-1] == ("convection", "trace", 1)
    latest = B.latest_rows(rows_of(out))
    conv = [r for r in latest.values() if r["case"] == "convection"]
    assert all(r["status"] == "ok" for r in conv) and len(rows_of(out)) == 15


def test_ctrl_c_stops_the_command_and_leaves_the_results_whole(tmp_path):
    path = tiny_suite(tmp_path)
    path.write_text(TINY.replace("steps = 30", "steps = 400"))
    out = tmp_path / "out"
    results = out / B.RESULTS_NAME
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "solvers", "bench", "--suite", str(path),
                             "--out", str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "rerun the same command to continue" in err and "Traceback" not in err
    data = results.read_bytes()
    assert data.endswith(b"\n")
    rows = [json.loads(ln) for ln in data.splitlines()]
    assert 1 <= len(rows) < 10 and all(r["status"] == "ok" for r in rows)


# ------------------------------------------------------------------------------ CLI errors
@pytest.mark.parametrize("argv, fragments", [
    (["--suite", "nope"], ["unknown suite 'nope'", "quick"]),
    (["--problems", "no-such"], ["problem 'no-such' is not a problem of the zoo"]),
    (["--problems", "lax"], ["problem 'lax' is not in suite 'quick'"]),
    (["--methods", "magic"], ["method 'magic'", "fixed"]),
    (["--executor", "dask"], ["invalid choice: 'dask'"]),
    (["--executor", "process", "--jobs", "0"], ["--jobs: expected a positive integer"]),
    (["--jobs", "2"], ["--jobs 2", "local executor"]),
    (["--jobs", "two"], ["--jobs", "invalid int value"]),
    (["--seeds", "0"], ["--seeds: expected a positive integer"]),
    (["--threads", "0"], ["--threads"]),
    (["--address", "auto"], ["--address is for --executor ray"]),
    (["--device", "tpu"], ["device"]),
])
def test_bad_options_exit_2_with_one_line(capsys, tmp_path, argv, fragments):
    code, out, err = run_cli(capsys, "bench", *argv, "--out", tmp_path / "o")
    assert code == 2
    assert_one_line_error(err, *fragments)
    assert not (tmp_path / "o").exists()


def test_a_bad_suite_file_exits_2_naming_it(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'bad'\n[methods]\nfixed = 'fixed'\n[[cases]]\nproblem = 'sin-cos'\n"
                   "steps = 'many'\n")
    code, _, err = run_cli(capsys, "bench", "--suite", bad, "--out", tmp_path / "o")
    assert code == 2
    assert_one_line_error(err, "bad.toml", "sin-cos")
    bad.write_text("not toml [")
    code, _, err = run_cli(capsys, "bench", "--suite", bad)
    assert code == 2
    assert_one_line_error(err, "is not valid TOML")


def test_list_shows_the_runs_and_their_state(capsys, tmp_path):
    path = tiny_suite(tmp_path)
    code, out, _ = run_cli(capsys, "bench", "--suite", path, "--list", "--out", tmp_path / "o")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 10 and all("to do" in ln for ln in lines)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ bench perf
def test_bench_perf_quick_prints_both_ratios(capsys):
    code, out, _ = run_cli(capsys, "bench", "perf", "--quick", "--threads", "1")
    assert code == 0
    ntk_lines = [ln for ln in out.splitlines() if "structured vs jacobian time" in ln]
    assert len(ntk_lines) == 4  # [f, d_h f], [f, laplacian f], [f, d_h^4 f], Euler residuals
    assert any("pinnk vs DeepXDE" in ln and "x eager" in ln for ln in out.splitlines())
    code, _, err = run_cli(capsys, "bench", "perf", "--repeats", "0")
    assert code == 2
    assert_one_line_error(err, "--repeats")


def test_a_method_table_overrides_the_optimizer_and_the_budget(tmp_path):
    text = TINY.replace('[defaults]', 'gn = { weighting = "trace:every=5", optimizer = '
                        '"gn:damping=0.01", steps = 6, dtype = "float64" }\n[defaults]')
    text = text.replace('methods = ["fixed", "trace"]', 'methods = ["fixed", "trace", "gn"]')
    suite = B.load_suite(_write(tmp_path / "gn.toml", text))
    assert suite.methods["gn"] == "trace:every=5"
    specs = B.plan(suite, problems=["poisson-1d"], methods=["gn", "fixed"], seeds=1)
    gn = next(s for s in specs if s.method == "gn")
    fixed = next(s for s in specs if s.method == "fixed")
    assert gn.budget["optimizer"]["kind"] == "gn" and gn.budget["steps"] == 6
    assert gn.budget["dtype"] == "float64" and fixed.budget["steps"] == 30
    assert gn.budget["ntk_every"] == 6 and gn.key != fixed.key
    report = B.run_suite([gn], tmp_path / "out", B.LocalExecutor())
    (row,) = report.rows
    assert row["status"] == "ok" and row["steps"] == 6
    for bad, msg in [('gn = { optimizer = "gn", stepz = 3 }', "unknown key.*stepz"),
                     ('gn = { optimizer = "gn:mode=x" }', "mode: expected 'lm' or 'line'"),
                     ('gn = { steps = 0 }', "steps: expected a positive integer")]:
        with pytest.raises(B.BenchError, match=f"method 'gn': {msg}"):
            B.load_suite(_write(tmp_path / "bad.toml", TINY.replace('[defaults]',
                                                                    bad + '\n[defaults]')))


def _write(path, text):
    path.write_text(text)
    return path
