"""The ``pinnk`` command line: listing, training, --config, --resume and one-line errors."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import problems
from solvers import _cli
from solvers._cli import parse_params, parse_points, parse_value
from solvers._train import CHECKPOINT, Trainer, TrainingError
from cli_util import assert_one_line_error, default_sigint, run_cli

REPO = Path(__file__).resolve().parents[2]
TINY = ["--steps", "20", "--points", "32", "--width", "8", "--depth", "1", "--quiet"]


def strip_time(history):
    return {"train": [{k: v for k, v in r.items() if k != "time"} for r in history["train"]],
            "diagnostics": history["diagnostics"]}


def read_json(path):
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------ value parsing
def test_parameter_values_are_json_with_a_string_fallback():
    assert parse_value("30") == 30 and parse_value("0.5") == 0.5 and parse_value("1e-3") == 1e-3
    assert parse_value("true") is True and parse_value("[1,0,1]") == [1, 0, 1]
    assert parse_value("tanh") == "tanh"
    assert parse_params(["beta=30", "left=[1, 0.5, 1]", "name=a=b"]) == \
        {"beta": 30, "left": [1, 0.5, 1], "name": "a=b"}
    for bad in (["beta"], ["=3"]):
        with pytest.raises(_cli.CLIError):
            parse_params(bad)


def test_points_are_one_count_or_counts_per_term():
    assert parse_points(["64"]) == 64
    assert parse_points(["residual=100", "initial=20"]) == {"residual": 100, "initial": 20}
    for bad in (["x"], ["residual=x"], ["64", "32"], ["64", "residual=3"], ["=3"]):
        with pytest.raises(_cli.CLIError):
            parse_points(bad)


# ------------------------------------------------------------------------------- listing
def test_problems_lists_every_problem_on_one_line(capsys):
    code, out, err = run_cli(capsys, "problems")
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == len(problems.names()) == 17
    for name, line in zip(problems.names(), lines):
        assert line.split()[0] == name
        assert problems.describe(name) in line
    conv = lines[problems.names().index("convection")]
    assert "beta=30.0" in conv and "periodic_embedding=false" in conv
    assert "left=[1.0,0.0,1.0]" in lines[problems.names().index("riemann")]

    code, out, _ = run_cli(capsys, "problems", "poisson-1d")
    assert code == 0 and out.startswith("poisson-1d") and len(out.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "problems", "nope")
    assert code == 2
    assert_one_line_error(err, "unknown problem 'nope'")


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.startswith("pinnk 0.")


# --------------------------------------------------------------------------------- errors
ERRORS = {
    "no command": ([], "a command is required"),
    "unknown option": (["train", "poisson-1d", "--bogus"], "--bogus"),
    "no problem": (["train", "--steps", "3"], "no problem given"),
    "unknown problem": (["train", "nope"], "unknown problem 'nope'"),
    "unknown parameter": (["train", "poisson-1d", "--param", "q=1"], "unknown parameter(s) q"),
    "bad parameter value": (["train", "convection", "--param", "beta=fast"],
                            "convection: beta: expected a real number"),
    "bad parameter type": (["train", "convection", "--param", "beta=true"], "beta"),
    "bad parameter syntax": (["train", "convection", "--param", "beta"], "--param"),
    "bad weighting": (["train", "poisson-1d", "--weighting", "bogus"], "weighting"),
    "bad weighting option": (["train", "poisson-1d", "--weighting", "trace:every=0"],
                             "weighting \"trace:every=0\": every"),
    "bad optimizer": (["train", "poisson-1d", "--optimizer", "sgd"], "optimizer"),
    "bad optimizer option": (["train", "poisson-1d", "--optimizer", "adam:foo=1"], "foo"),
    "bad gauss-newton mode": (["train", "poisson-1d", "--optimizer", "gn:mode=newton"],
                              "mode: expected 'lm' or 'line'"),
    "bad gauss-newton damping": (["train", "poisson-1d", "--optimizer", "gn:damping=-1"],
                                 "damping: expected a positive number"),
    "bad sequence switch": (["train", "poisson-1d", "--optimizer", "adam+gn:switch=a/b"],
                            "switch='a/b' is not a number"),
    "zero steps": (["train", "poisson-1d", "--steps", "0"], "steps"),
    "negative steps": (["train", "poisson-1d", "--steps", "-5"], "steps"),
    "steps not a number": (["train", "poisson-1d", "--steps", "many"], "--steps"),
    "bad points": (["train", "poisson-1d", "--points", "0"], "points: expected an integer"),
    "bad term points": (["train", "poisson-1d", "--points", "residual=-1"],
                        "points['residual']: expected an integer >= 1"),
    "unknown term": (["train", "poisson-1d", "--points", "nope=3"], "points: unknown term"),
    "bad dtype": (["train", "poisson-1d", "--dtype", "float16"], "--dtype"),
    "bad device": (["train", "poisson-1d", "--device", "gpu"], "device"),
    "bad activation": (["train", "poisson-1d", "--activation", "swish"], "activation"),
    "missing config": (["train", "--config", "no-such-config.json"], "no such file"),
    "resume without out": (["train", "poisson-1d", "--resume"], "--out"),
    "march without time": (["train", "poisson-1d", "--windows", "2"],
                           "--windows: poisson-1d has no time coordinate"),
    "no windows": (["train", "convection", "--windows", "0"],
                   "--windows: expected a number of windows >= 1, got 0"),
    "windows not a number": (["train", "convection", "--windows", "ten"], "--windows"),
    "march resumed without run": (["train", "convection", "--windows", "2", "--resume",
                                   "--out", "x"], "--resume: there is no run folder 'x'"),
    "march bad weighting": (["train", "convection", "--windows", "2", "--weighting", "bogus"],
                            "weighting"),
    "continuation form": (["train", "convection", "--continuation", "beta"],
                          "--continuation: expected NAME=V1[:N1],V2[:N2],..."),
    "continuation value": (["train", "convection", "--continuation", "beta=1,x"],
                           "'x' is not VALUE or VALUE:STEPS"),
    "continuation steps of some": (["train", "convection", "--continuation", "beta=1:4,5"],
                                   "give the steps of every stage (V:N) or of none"),
    "continuation zero steps": (["train", "convection", "--continuation", "beta=1:0"],
                                "expected finite values and step counts >= 1"),
    "continuation nan": (["train", "convection", "--continuation", "beta=nan"],
                         "expected finite values"),
    "continuation unknown parameter": (["train", "convection", "--continuation", "bogus=1,2"],
                                       "convection: unknown parameter(s) bogus"),
    "continuation marched": (["train", "convection", "--continuation", "beta=1", "--windows",
                              "2"], "--windows: a run is marched in time or continued"),
    "accept loss alone": (["train", "convection", "--accept-loss", "1e-3"],
                          "--accept-loss: applies to the stages of a --continuation"),
    "retries alone": (["train", "convection", "--retries", "1"],
                      "--retries: applies to the stages of a --continuation"),
    "bad retries": (["train", "convection", "--continuation", "beta=1", "--retries", "a,1"],
                    "--retries: expected an integer R or R1,R2,..."),
    "retries without accept": (["train", "convection", "--continuation", "beta=1,2", "--retries",
                                "1", "--steps", "1"], "retries: a stage is trained again"),
    "continuation steps twice": (["train", "convection", "--continuation", "beta=1:3",
                                  "--steps", "4"], "--steps: the stages of this --continuation"),
    "continuation resumed without run": (["train", "convection", "--continuation", "beta=1",
                                          "--resume", "--out", "x"],
                                         "--resume: there is no run folder 'x'"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_options_exit_2_with_one_line(capsys, tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    argv, fragment = ERRORS[case]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_line_error(err, fragment)
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_cuda_requested_but_absent(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "poisson-1d", "--device", "cuda", "--out", tmp_path)
    assert code == 2
    assert_one_line_error(err, "CUDA was requested but is not available")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_cuda_from_a_config_file_suggests_device(capsys, tmp_path):
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"problem": "poisson-1d", "device": "cuda"}))
    code, _, err = run_cli(capsys, "train", "--config", path, "--out", tmp_path / "r")
    assert code == 2
    assert_one_line_error(err, "CUDA was requested", "pass --device")


def test_config_file_errors(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"problem": "poisson-1d", ')
    code, _, err = run_cli(capsys, "train", "--config", bad)
    assert code == 2
    assert_one_line_error(err, "not valid JSON", "line 1")

    cases = [({"problem": "poisson-1d", "colour": "red"}, "unknown key 'colour'"),
             ([1, 2], "JSON object"),
             ({"problem": "poisson-1d", "model": {"custom": "Net"}}, "custom model"),
             ({"problem": "poisson-1d", "model": {"size": 3}}, "size"),
             ({"problem": "poisson-1d", "export": "no"}, "'export'"),
             ({"problem": "poisson-1d", "steps": "ten"}, "steps"),
             ({"problem": "poisson-1d", "params": {"a": "x"}}, "a")]
    for k, (cfg, fragment) in enumerate(cases):
        path = tmp_path / f"c{k}.json"
        path.write_text(json.dumps(cfg))
        code, _, err = run_cli(capsys, "train", "--config", path, "--out", tmp_path / f"o{k}")
        assert code == 2, cfg
        assert_one_line_error(err, fragment)


def test_resume_errors(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "poisson-1d", "--out", tmp_path / "none", "--resume")
    assert code == 2
    assert_one_line_error(err, "--resume: there is no run folder", "nothing to resume")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "train", "poisson-1d", "--out", tmp_path / "empty", "--resume")
    assert code == 2
    assert_one_line_error(err, "no checkpoint.pt")
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "train", "poisson-1d", "--out", tmp_path / "file", *TINY)
    assert code == 2
    assert_one_line_error(err, "not a folder")


def test_errors_through_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "solvers", "train", "poisson-1d", "--param",
                           "q=1"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "unknown parameter(s) q")
    assert proc.stdout == ""
    script = shutil.which("pinnk") or str(Path(sys.executable).with_name("pinnk"))
    if Path(script).exists():
        proc = subprocess.run([script, "train", "nope"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert_one_line_error(proc.stderr, "unknown problem 'nope'")


# --------------------------------------------------------------------------------- training
def test_tiny_training_run_writes_the_run_folder(capsys, tmp_path):
    out = tmp_path / "tmp"
    code, stdout, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--out", out)
    assert code == 0, err
    assert "Traceback" not in err
    for name in ("config.json", "history.json", "metrics.json", CHECKPOINT, "solution.vtu",
                 "loss.png", "solution.png"):
        assert (out / name).is_file(), name
    metrics = read_json(out / "metrics.json")
    assert metrics["steps"] == 20
    assert "relative L2 error: u" in stdout and str(out) in stdout and "solution.vtu" in stdout
    cfg = read_json(out / "config.json")
    assert cfg["steps"] == 20 and cfg["model"]["width"] == 8 and cfg["model"]["depth"] == 1
    assert cfg["points"] == {"residual": 32, "boundary": 32}

    # The same folder again without --resume is refused (it would overwrite the run).
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--out", out)
    assert code == 2
    assert_one_line_error(err, "already holds a run", "--resume")


def test_default_run_folder_and_progress_bar(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_cli(capsys, "train", "poisson-1d", "--steps", "5", "--points", "16",
                                "--width", "4", "--depth", "1", "--no-export")
    assert code == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("poisson-1d-")
    assert (runs[0] / CHECKPOINT).is_file() and not (runs[0] / "solution.vtu").exists()
    assert "5/5" in err  # the progress bar


def test_default_out_never_reuses_a_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(_cli.time, "strftime", lambda fmt: "20240101-000000")
    first = _cli.default_out("sod", tmp_path)
    first.mkdir()
    second = _cli.default_out("sod", tmp_path)
    assert second.name == "sod-20240101-000000-2"


def test_config_of_a_previous_run_repeats_it(capsys, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli(capsys, "train", "convection", "--param", "beta=2", "--weighting",
                   "causal:chunks=4+trace:every=5", "--optimizer", "adam:lr=5e-3",
                   "--resample-every", "4", "--ntk-every", "5", "--probe-points", "8",
                   "--seed", "3", "--dtype", "float64", *TINY, "--no-export", "--out", a)[0] == 0
    code, _, err = run_cli(capsys, "train", "--config", a / "config.json", "--out", b,
                           "--quiet", "--no-export")
    assert code == 0, err
    assert read_json(b / "config.json") == read_json(a / "config.json")
    assert strip_time(read_json(b / "history.json")) == strip_time(read_json(a / "history.json"))
    # A run folder may be given instead of its config.json.
    code, _, err = run_cli(capsys, "train", "--config", a, "--out", tmp_path / "c", "--quiet",
                           "--no-export")
    assert code == 0, err


def test_hold_last_on_the_command_line_and_in_a_config(capsys, tmp_path):
    a = tmp_path / "a"
    assert run_cli(capsys, "train", "poisson-1d", "--resample-every", "4", "--hold-last", "6",
                   *TINY, "--no-export", "--out", a)[0] == 0
    cfg = read_json(a / "config.json")
    assert cfg["hold_last"] == 6 and cfg["adaptive_start"] is False
    code, _, err = run_cli(capsys, "train", "--config", a, "--out", tmp_path / "b", "--quiet",
                           "--no-export")
    assert code == 0, err
    assert read_json(tmp_path / "b" / "config.json")["hold_last"] == 6
    code, _, err = run_cli(capsys, "train", "poisson-1d", "--hold-last", "3", *TINY,
                           "--no-export")
    assert code == 2
    assert_one_line_error(err, "hold_last: keeps the points of the last 3 steps and needs "
                               "resample_every > 0")
    # a network trained elsewhere cannot be given on the command line
    cfg["adaptive_start"], cfg["sampler"] = True, "rad"
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    code, _, err = run_cli(capsys, "train", "--config", tmp_path / "c.json", "--no-export",
                           "--quiet")
    assert code == 2
    assert_one_line_error(err, "adaptive_start: draws the first points from a trained network")


def test_config_file_with_option_keys_and_command_line_overrides(capsys, tmp_path):
    cfg = {"problem": "convection", "params": {"beta": 1, "periodic_embedding": True},
           "weighting": "trace:every=5", "optimizer": "adam:lr=1e-2", "steps": 8,
           "points": {"residual": 32, "initial": 16}, "model": {"width": 8},
           "depth": 1, "ntk-every": 0, "export": False, "quiet": True,
           "out": str(tmp_path / "from-config"), "versions": {"pinnk": "0.0.0"}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(cfg))
    code, _, err = run_cli(capsys, "train", "--config", path, "--steps", "6", "--param",
                           "beta=2", "--points", "initial=8", "--width", "6")
    assert code == 0, err
    got = read_json(tmp_path / "from-config" / "config.json")
    assert got["problem"] == {"name": "convection",
                              "params": {"beta": 2.0, "periodic_embedding": True}}
    assert got["steps"] == 6 and got["ntk_every"] == 0
    assert got["points"] == {"residual": 32, "initial": 8}
    assert got["model"]["width"] == 6 and got["model"]["depth"] == 1
    assert got["model"]["embedding"]["kind"] == "periodic"
    assert got["weighting"]["kind"] == "trace" and got["weighting"]["every"] == 5
    assert got["optimizer"]["lr"] == 0.01


class _StopAt:
    """Patch Trainer._train_step to raise ``exc`` when the trainer reaches ``step``."""

    def __init__(self, monkeypatch, step, exc):
        original = Trainer._train_step

        def patched(trainer):
            if trainer.step == step:
                raise exc
            return original(trainer)

        monkeypatch.setattr(Trainer, "_train_step", patched)


def test_interrupt_exits_130_and_resume_continues_the_run(capsys, tmp_path, monkeypatch):
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["train", "convection", "--param", "beta=1", "--weighting", "trace:every=4",
            "--resample-every", "5", "--checkpoint-every", "4", "--ntk-every", "6",
            "--probe-points", "8", *TINY, "--no-export"]
    assert run_cli(capsys, *args, "--out", full)[0] == 0

    with monkeypatch.context() as m:
        _StopAt(m, 14, KeyboardInterrupt())
        code, _, err = run_cli(capsys, *args, "--out", part)
    assert code == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "interrupted at step 14" in lines[0] and "checkpoint (step 12)" in lines[0]
    assert f"pinnk train --out {part} --resume" in lines[0]

    # Resume with only --out: the options come from the run folder.
    code, stdout, err = run_cli(capsys, "train", "--out", part, "--resume", "--quiet")
    assert code == 0, err
    assert strip_time(read_json(part / "history.json")) == \
        strip_time(read_json(full / "history.json"))
    a = torch.load(full / CHECKPOINT, weights_only=False)["model"]
    b = torch.load(part / CHECKPOINT, weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Resuming with a different config is a one-line error.
    code, _, err = run_cli(capsys, "train", "--out", part, "--resume", "--steps", "30")
    assert code == 2
    assert_one_line_error(err, "steps=20")
    # Without config.json the checkpoint's config supplies the options (a finished run only
    # writes its results again).
    (full / "config.json").unlink()
    code, stdout, err = run_cli(capsys, "train", "--out", full, "--resume", "--quiet",
                                "--no-export")
    assert code == 0, err
    assert read_json(full / "metrics.json")["steps"] == 20 and (full / "config.json").is_file()


def test_interrupt_before_the_first_checkpoint(capsys, tmp_path, monkeypatch):
    _StopAt(monkeypatch, 1, KeyboardInterrupt())
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--checkpoint-every", "10",
                           "--no-export", "--out", tmp_path / "r")
    assert code == 130
    assert "before the first checkpoint" in err and len(err.strip().splitlines()) == 1


def test_training_error_exits_1_with_one_line(capsys, tmp_path, monkeypatch):
    _StopAt(monkeypatch, 3, TrainingError("loss term 'residual' is nan at step 3; training "
                                          "stopped, the last good checkpoint is kept"))
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--checkpoint-every", "2",
                           "--no-export", "--out", tmp_path / "r")
    assert code == 1
    assert_one_line_error(err, "'residual' is nan at step 3", str(tmp_path / "r"))
    assert torch.load(tmp_path / "r" / CHECKPOINT, weights_only=False)["step"] == 2


def _interrupted(argv, cwd, ready):
    """Run ``pinnk argv`` in a child process, send it SIGINT once the file ``ready`` exists;
    (exit status, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "solvers", *map(str, argv)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 90
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert ready.exists()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return proc.returncode, lines[0]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_a_real_process(tmp_path):
    out = tmp_path / "run"
    code, line = _interrupted(["train", "poisson-1d", "--steps", "100000", "--points", "16",
                               "--width", "4", "--depth", "1", "--checkpoint-every", "5",
                               "--ntk-every", "0", "--quiet", "--out", out], tmp_path,
                              out / CHECKPOINT)
    assert code == 130
    assert "the last checkpoint" in line and "--resume" in line
    assert torch.load(out / CHECKPOINT, weights_only=False)["step"] % 5 == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_a_march(tmp_path):
    out = tmp_path / "run"
    code, line = _interrupted(["train", "convection", "--windows", "2", "--steps", "100000",
                               "--points", "16", "--width", "4", "--depth", "1",
                               "--checkpoint-every", "5", "--ntk-every", "0", "--quiet",
                               "--no-export", "--out", out], tmp_path,
                              out / "window-0" / CHECKPOINT)
    assert code == 130
    assert line == f"pinnk: interrupted in window 0 of 2; continue with: pinnk train --out {out} " \
                   f"--resume"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_a_continuation(tmp_path):
    out = tmp_path / "run"
    code, line = _interrupted(["train", "convection", "--continuation", "beta=1:4,2:100000",
                               "--points", "16", "--width", "4", "--depth", "1",
                               "--checkpoint-every", "5", "--ntk-every", "0", "--quiet",
                               "--no-export", "--out", out], tmp_path,
                              out / "stage-1" / CHECKPOINT)
    assert code == 130
    assert line.startswith("pinnk: interrupted in stage 1 of 2 (beta = 2); continue with: ")
    assert line.endswith(f"--out {out} --resume")


def test_train_continuation_runs_resumes_and_repeats(capsys, tmp_path):
    """--continuation: stages in a parameter (run folders stage-k, the options in config.json,
    the result in continuation.json); a second run into the folder is refused; a stopped one
    (its last stage gone) resumed with --out --resume alone ends as the first; --config OUT
    repeats it into another folder."""
    out = tmp_path / "cont"
    argv = ["train", "convection", "--continuation", "beta=1:4,5:3", "--optimizer", "gn",
            "--points", "16", "--width", "8", "--depth", "2", "--ntk-every", "0",
            "--accept-loss", "1e-30", "--retries", "0,1", "--out", out, "--quiet",
            "--no-export"]
    code, text, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "convection: 2 stages in beta, 7 steps in " in text
    assert "stage 1 beta = 5: 3 steps, final loss " in text and "(2 attempts)  <- result" in text
    assert "training it again" in err and "accept_loss: no stage ended" in err
    first = read_json(out / "continuation.json")
    assert first["final_stage"] == 1 and [len(s["attempts"]) for s in first["stages"]] == [1, 2]
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "continuation.json", "stage-0", "stage-1", "stage-1-attempt-0"]
    assert read_json(out / "config.json")["continuation"] == {
        "parameter": "beta", "values": [1.0, 5.0], "steps": [4, 3]}
    assert read_json(out / "stage-1" / "config.json")["problem"]["params"]["beta"] == 5.0
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_line_error(err, "already holds a run; pass --resume")
    code, _, err = run_cli(capsys, "train", "convection", "--out", out, "--steps", "1")
    assert code == 2
    assert_one_line_error(err, "holds a continuation or a marched run; pass --resume")

    def same(a, b):
        for sa, sb in zip(a["stages"], b["stages"]):
            assert sa["final_loss"] == sb["final_loss"]
            assert [t["seed"] for t in sa["attempts"]] == [t["seed"] for t in sb["attempts"]]
        assert a["relative_l2"] == b["relative_l2"] and a["final_stage"] == b["final_stage"]

    for d in out.glob("stage-1*"):
        shutil.rmtree(d)
    (out / "continuation.json").unlink()
    code, text, err = run_cli(capsys, "train", "--out", out, "--resume")
    assert code == 0, err
    same(read_json(out / "continuation.json"), first)
    code, text, err = run_cli(capsys, "train", "--config", out, "--out", tmp_path / "again")
    assert code == 0, err
    same(read_json(tmp_path / "again" / "continuation.json"), first)


def test_train_marches_in_time_with_windows(capsys, tmp_path):
    out = tmp_path / "march"
    argv = ["train", "convection", "--param", "beta=1", "--windows", "2", "--steps", "4",
            "--optimizer", "gn", "--points", "residual=64", "--points", "initial=32",
            "--width", "8", "--depth", "2", "--out", out, "--quiet", "--no-export"]
    code, text, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "convection: 2 windows, 8 steps" in text and "window 1 t in [0.5, 1]: 4 steps" in text
    assert "relative L2 error: u " in text
    metrics = json.loads((out / "march.json").read_text())
    assert [w["t"] for w in metrics["windows"]] == [[0.0, 0.5], [0.5, 1.0]]
    config = json.loads((out / "window-1" / "config.json").read_text())
    assert config["problem"]["params"]["window"] == [0.5, 1.0]
    # a second marched run into the same folder is refused before any work
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_line_error(err, "already holds a run; pass --resume to continue it")
    # stopped in its second window (gone, and march.json with it), --out --resume alone
    # finishes it as before; the options were kept in OUT/config.json
    assert json.loads((out / "config.json").read_text())["windows"] == 2
    shutil.rmtree(out / "window-1")
    (out / "march.json").unlink()
    code, again, err = run_cli(capsys, "train", "--out", out, "--resume")
    assert code == 0, err
    assert json.loads((out / "march.json").read_text())["relative_l2"] == metrics["relative_l2"]
    assert again.splitlines()[1:] == text.splitlines()[1:]
