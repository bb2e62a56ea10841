"""Runs must not destroy each other or their own results: the folder lock, file modes, stale
temporaries, metrics.json last, options saved for --resume, good checkpoints only, the exit-code
rule, Ctrl-C during start-up, and the tests' own behaviour with SIGINT ignored."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import problems
from pinnk import io as pio
from solvers import Trainer, TrainingError, train
from solvers import _bench as B
from solvers._runfolder import LOCK_NAME, lock_folder
from solvers._train import CHECKPOINT
from cli_util import assert_one_line_error, default_sigint, run_cli

REPO = Path(__file__).resolve().parents[2]
QUICK = dict(steps=8, points=16, model_options={"width": 4, "depth": 1}, export=False,
             ntk_every=0, device="cpu", checkpoint_every=4)
TINY = ["--steps", "8", "--points", "16", "--width", "4", "--depth", "1", "--ntk-every", "0",
        "--checkpoint-every", "4"]


def poisson():
    return problems.get("poisson-1d")


def hidden(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------ the lock
def test_the_lock_refuses_a_second_writer_and_is_gone_after_the_run(tmp_path):
    out = tmp_path / "run"
    first = Trainer(poisson(), out=out, **QUICK)
    first.lock_out()
    assert (out / LOCK_NAME).is_file()
    assert f"pid {os.getpid()}" in (out / LOCK_NAME).read_text()
    with pytest.raises(ValueError, match=r"out: '.*run' is in use by another run"):
        Trainer(poisson(), out=out, **QUICK).run()
    second = Trainer(poisson(), out=out, **QUICK)
    first.run()  # releases the lock at its end ...
    assert not (out / LOCK_NAME).exists()
    second.load_checkpoint()  # ... and a resume may now take it
    with pytest.raises(ValueError, match="is in use by another run"):
        lock_folder(out)
    second.run()
    assert hidden(out) == []


def test_the_lock_is_released_when_a_run_fails(tmp_path):
    out = tmp_path / "run"

    def boom(trainer):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train(poisson(), out=out, callback=boom, **QUICK)
    with lock_folder(out):  # free again
        pass
    assert hidden(out) == []


def test_a_lock_file_left_by_a_killed_process_does_not_block(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; "
                             "from solvers._runfolder import lock_folder; "
                             f"lock = lock_folder({str(out)!r}); print('locked', flush=True); "
                             "time.sleep(60)"], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=rf"pid {proc.pid} on "):
            lock_folder(out)
    finally:
        proc.kill()
        proc.wait()
    assert (out / LOCK_NAME).exists()  # SIGKILL: the file stays, the lock does not
    with lock_folder(out) as lock:
        assert lock.held
    assert not (out / LOCK_NAME).exists()


def test_bench_runs_hold_the_lock_while_they_write(tmp_path):
    seen = []

    def fn(task):
        with pytest.raises(ValueError, match="is in use by another run"):
            lock_folder(tmp_path / "suite")
        seen.append(task["key"])
        return B.failed_row(task, "not run")

    suite = B.load_suite("quick")
    specs = B.plan(suite, ["poisson-1d"], ["fixed"], 1)
    B.run_suite(specs, tmp_path / "suite", B.LocalExecutor(), fn=fn)
    assert len(seen) == 1 and hidden(tmp_path / "suite") == []


# ------------------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_the_mode_of_a_plain_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w") as fh:
            fh.write("x")
        pio.write_json(tmp_path / "a.json", {"a": 1})
        pio.save_torch(tmp_path / "b.pt", {"b": torch.zeros(2)})
        pio.write_with(tmp_path / "c.txt", lambda p: p.write_text("c"))
        B.ResultsFile(tmp_path / "r.jsonl").append({"key": "k"})
        res = train(poisson(), out=tmp_path / "run", **QUICK)
    finally:
        os.umask(old)
    want = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert want == 0o666 & ~umask
    written = [tmp_path / n for n in ("a.json", "b.pt", "c.txt", "r.jsonl")] + \
        [Path(f) for f in res.files]
    for f in written:
        assert stat.S_IMODE(f.stat().st_mode) == want, (f, oct(f.stat().st_mode))


def test_a_rewritten_file_keeps_its_mode(tmp_path):
    f = tmp_path / "private.json"
    pio.write_json(f, {"v": 1})
    os.chmod(f, 0o600)
    pio.write_json(f, {"v": 2})
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and json.loads(f.read_text()) == {"v": 2}


# --------------------------------------------------------------------------- temporaries
def test_remove_temporaries_removes_only_temporaries(tmp_path):
    keep = ["solution.png", ".hidden", ".solution.png.notes", "checkpoint.pt", ".x.abcdefgh.png"]
    drop = [".solution.png.k2j4h1x9.png", ".history.json.a1b2c3d4.json",
            ".checkpoint.pt.0f3a9c1e.pinnk-tmp.pt", ".write-test-12.pinnk-tmp"]
    for n in keep + drop:
        (tmp_path / n).write_bytes(b"")
    (tmp_path / ".solution-export-abc123").mkdir()
    (tmp_path / ".solution-export-abc123" / "solution.h5").write_bytes(b"")
    removed = pio.remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(drop + [".solution-export-abc123"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_resume_removes_the_temporaries_of_a_killed_export(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--quiet", "--out", out)
    assert code == 0, err
    stale = [out / ".solution.png.k2j4h1x9.png", out / ".loss.png.3b7e9a2c.pinnk-tmp.png"]
    for p in stale:
        p.write_bytes(b"")
    code, _, err = run_cli(capsys, "train", "--out", out, "--resume")
    assert code == 0, err
    assert hidden(out) == []


# --------------------------------------------------------------------- metrics.json comes last
def test_metrics_json_is_written_after_every_export(tmp_path, monkeypatch):
    import solvers._plots as P

    order = []
    real = P.render_pyvista

    def spy(problem, model, out, **kw):
        order.append(("render", (Path(out) / "metrics.json").exists()))
        return real(problem, model, out, **kw)

    monkeypatch.setattr(P, "render_pyvista", spy)
    train(poisson(), out=tmp_path / "run", **{**QUICK, "export": True})
    assert order == [("render", False)]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_a_run_killed_in_the_export_has_no_metrics_and_resumes_to_them(capsys, tmp_path,
                                                                      monkeypatch):
    import solvers._plots as P

    out = tmp_path / "run"

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(P, "plot_history", killed)
        code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--quiet", "--out", out)
    assert code == 130
    assert (out / CHECKPOINT).is_file() and not (out / "metrics.json").exists()
    code, _, err = run_cli(capsys, "train", "--out", out, "--resume")
    assert code == 0, err
    assert (out / "metrics.json").is_file() and (out / "loss.png").is_file()


# ---------------------------------------------------------------- options saved for --resume
def test_no_export_and_quiet_are_saved_and_kept_by_resume(capsys, tmp_path, monkeypatch):
    import solvers._cli as C
    from solvers._train import Trainer as T

    out = tmp_path / "run"
    real = T._train_step

    def stop(trainer):
        if trainer.step == 5:
            raise KeyboardInterrupt
        return real(trainer)

    with monkeypatch.context() as m:
        m.setattr(T, "_train_step", stop)
        code, _, _ = run_cli(capsys, "train", "poisson-1d", *TINY, "--no-export", "--quiet",
                             "--out", out)
    assert code == 130
    config = json.loads((out / "config.json").read_text())
    assert config["export"] is False and config["quiet"] is True
    seen = {}
    real_prepare = C.prepare

    def spy(args):
        trainer = real_prepare(args)
        seen.update(export=trainer.export, progress=trainer.progress)
        return trainer

    monkeypatch.setattr(C, "prepare", spy)
    code, stdout, err = run_cli(capsys, "train", "--out", out, "--resume")
    assert code == 0, err
    assert seen == {"export": False, "progress": False}
    assert not (out / "loss.png").exists() and "files: config.json, history.json" in stdout
    # --export turns the exports back on for a resumed run
    code, stdout, err = run_cli(capsys, "train", "--out", out, "--resume", "--export")
    assert code == 0, err
    assert seen["export"] is True and (out / "loss.png").is_file()


# ------------------------------------------------------------- good checkpoints, NaN messages
def test_a_checkpoint_is_written_only_when_its_losses_are_finite(tmp_path):
    # lr = 1e30: the parameters after step 0 are finite (about 1e30) but their loss is Inf.
    with pytest.raises(TrainingError, match=r"loss term '\w+' is (inf|nan) at step 1; training "
                                            r"stopped before the first checkpoint, so there is "
                                            r"nothing to resume"):
        train(poisson(), out=tmp_path / "run", optimizer="adam:lr=1e30",
              **{**QUICK, "checkpoint_every": 1})
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_a_nan_after_a_checkpoint_names_that_checkpoint(tmp_path):
    def poison(trainer):
        if trainer.step == 5:
            with torch.no_grad():
                trainer.model.weights[0].fill_(float("nan"))

    with pytest.raises(TrainingError, match=r"is nan at step 6; training stopped; the last good "
                                            r"checkpoint \(step 4\) is kept"):
        train(poisson(), out=tmp_path / "run", callback=poison, **QUICK)
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=False)["step"] == 4


# ------------------------------------------------------------------------- warnings at start
def test_options_that_would_do_nothing_are_warned_about_at_start():
    with pytest.warns(UserWarning, match=r"optimizer: switch=50 is at step 50, at or after the "
                                         r"last step of a run of 5 steps, so L-BFGS never runs"):
        Trainer(poisson(), optimizer="adam+lbfgs:switch=50", **{**QUICK, "steps": 5})
    with pytest.warns(UserWarning, match=r"switch=0.01 is at step 0 .* so Adam never runs"):
        Trainer(poisson(), optimizer="adam+lbfgs:switch=0.01", **{**QUICK, "steps": 5})
    with pytest.warns(UserWarning, match=r"weighting: causal weighting needs a time coordinate "
                                         r"and this problem has none"):
        Trainer(poisson(), weighting="causal+fixed", **QUICK)
    with pytest.warns(UserWarning, match=r"resample_every: 10 >= steps=8, so the collocation "
                                         r"points are never redrawn"):
        Trainer(poisson(), resample_every=10, **QUICK)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(poisson(), optimizer="adam+lbfgs:switch=4", weighting="fixed", **QUICK)
        Trainer(problems.get("burgers-1d"), weighting="causal+fixed", **QUICK)


def test_the_command_line_prints_a_warning_on_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--quiet", "--no-export",
                           "--optimizer", "adam+lbfgs:switch=50", "--out", tmp_path / "r")
    assert code == 0
    assert err.strip().splitlines() == [
        "pinnk: warning: optimizer: switch=50 is at step 50, at or after the last step of a "
        "run of 8 steps, so L-BFGS never runs"]


# --------------------------------------------------------------------------- exit codes
def test_exit_codes_1_for_a_failed_run_2_for_bad_input(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--quiet", "--no-export",
                           "--optimizer", "adam:lr=1e30", "--checkpoint-every", "1",
                           "--out", tmp_path / "nan")
    assert code == 1
    assert_one_line_error(err, "at step 1", "before the first checkpoint")
    assert "is inf at step 1" in err or "is nan at step 1" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--out", tmp_path / "file" / "r")
    assert code == 2
    assert_one_line_error(err, "which is a file, not a folder")


def test_a_write_failing_while_running_exits_1(capsys, tmp_path, monkeypatch):
    import solvers._train as T

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(T.pio, "save_torch", full)
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY, "--quiet", "--no-export",
                           "--out", tmp_path / "r")
    assert code == 1
    assert_one_line_error(err, "cannot write the run folder", "No space left on device")


# -------------------------------------------------------------------------------- SIGINT
def test_an_append_with_sigint_ignored_stays_ignored(tmp_path, monkeypatch):
    f = B.ResultsFile(tmp_path / "r.jsonl")
    real_fsync = os.fsync

    def interrupted_fsync(fd):
        os.kill(os.getpid(), signal.SIGINT)
        real_fsync(fd)

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        monkeypatch.setattr(B.os, "fsync", interrupted_fsync)
        f.append({"key": "a"})  # nohup: the Ctrl-C is ignored, not turned into an exception
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
    assert [r["key"] for r in f.read()] == ["a"]


@pytest.mark.skipif(sys.platform == "win32" or not Path("/proc/self/maps").exists(),
                    reason="Linux /proc")
def test_ctrl_c_while_torch_imports_exits_130_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "solvers", "train", "poisson-1d", "--out",
                             str(tmp_path / "r")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 60
        maps = Path(f"/proc/{proc.pid}/maps")
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if "libtorch" in maps.read_text():
                    break  # torch is being imported
            except OSError:
                pass
            time.sleep(0.005)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.strip() in ("pinnk: interrupted", "pinnk: interrupted before training started")
    assert not (tmp_path / "r").exists()


def test_the_ctrl_c_tests_pass_with_sigint_ignored(tmp_path):
    """``nohup pytest &`` starts the tests with SIGINT ignored; the tests that interrupt a child
    or themselves must still pass."""
    tests = ["tests/solvers/test_bench.py::test_ctrl_c_during_an_append_waits_for_the_complete_line",
             "tests/solvers/test_cli.py::test_ctrl_c_in_a_real_process",
             "tests/solvers/test_run_folders.py::"
             "test_ctrl_c_while_torch_imports_exits_130_with_one_line"]
    code = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "os.execv(sys.executable, [sys.executable, '-m', 'pytest', '-q', '-p', "
            "'no:cacheprovider'] + sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", code, *tests], cwd=REPO, capture_output=True,
                          text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "3 passed" in proc.stdout


def test_nan_parameters_before_the_diagnostics_stop_the_run_as_a_failure(capsys, tmp_path,
                                                                         monkeypatch):
    from solvers._train import Trainer as T

    real = T._train_step

    def poison(trainer):
        out = real(trainer)
        if trainer.step == 3:
            with torch.no_grad():
                trainer.model.weights[0].fill_(float("nan"))
        return out

    monkeypatch.setattr(T, "_train_step", poison)
    code, _, err = run_cli(capsys, "train", "poisson-1d", *TINY[:-4], "--ntk-every", "4",
                           "--checkpoint-every", "3", "--quiet", "--no-export",
                           "--out", tmp_path / "r")
    assert code == 1  # a failed run, not bad input (the kernel refuses NaN parameters)
    assert_one_line_error(err, "the network parameters became NaN/Inf at step 3",
                          "the last good checkpoint (step 3) is kept")
