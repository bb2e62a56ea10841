"""Fault injection: SIGKILL at random moments of a short ``pinnk train`` and ``pinnk bench``, then
``--resume`` (a rerun for bench). After every kill each file in the folder parses; at the end the
parameters, the history and the results equal those of an uninterrupted run.

The default variant kills each command a few times (seconds of work besides the process
start-ups); the ``slow`` variant kills ten times, in longer runs, at moments drawn from a wider
window. A kill lands at a uniform moment within the window after the process takes the folder's
lock: in the training, between checkpoints or in one, in the export, between the rows of a suite
or in its summary.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from solvers import _bench as B
from solvers._cli import main
from solvers._runfolder import LOCK_NAME
from solvers._train import CHECKPOINT

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TRAIN = ["train", "poisson-1d", "--points", "16", "--width", "8", "--depth",
         "1", "--ntk-every", "100", "--probe-points", "8", "--checkpoint-every", "25",
         "--log-every", "10", "--quiet", "--device", "cpu"]
SUITE = """
name = "faults"
seeds = 2
[methods]
fixed = "fixed"
trace = "trace:every=10"
[defaults]
methods = ["fixed", "trace"]
steps = 400
width = 8
depth = 1
probe_points = 8
[[cases]]
problem = "poisson-1d"
points = 16
[[cases]]
problem = "sin-cos"
points = 16
"""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_every_file_parses(folder):
    """Open each file of ``folder`` with the reader of its kind; a kill may leave hidden
    temporaries (removed on resume) but never a damaged file under its real name."""
    for f in sorted(Path(folder).iterdir()):
        if f.name.startswith("."):
            continue
        data = f.read_bytes()
        if f.suffix == ".json":
            json.loads(data)
        elif f.suffix == ".jsonl":
            rows = B.ResultsFile(f).read()  # every complete line is a row
            assert data.endswith(b"\n"), f  # appends are whole lines
            assert len(rows) == data.count(b"\n")
        elif f.suffix == ".pt":
            st = torch.load(f, weights_only=False)
            assert {"model", "step", "config"} <= set(st)
        elif f.suffix == ".png":
            assert data.startswith(PNG_MAGIC) and data.endswith(b"IEND\xaeB`\x82"), f
        elif f.suffix in (".vtu", ".xdmf"):
            ET.fromstring(data)
        elif f.suffix == ".h5":
            import h5py
            with h5py.File(f, "r") as h:
                list(h.keys())
        elif f.suffix in (".md", ".csv"):
            data.decode("utf-8")
        else:
            raise AssertionError(f"unexpected file {f.name}")


def started(folder, pid):
    """Whether the process ``pid`` holds the folder's lock: it is past its start-up and about to
    write (a lock file left by a killed process names that process, not this one)."""
    try:
        return f"pid {pid} " in (Path(folder) / LOCK_NAME).read_text()
    except OSError:
        return False


def run_with_kills(argv, folder, kills, rng, window):
    """Run ``python -m solvers *argv`` ``kills`` times with a SIGKILL at a random moment within
    ``window`` seconds of its taking the folder's lock (unless it ends first), and check the
    folder after each."""
    killed = 0
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-m", "solvers", *argv], cwd=REPO, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not started(folder, proc.pid) and proc.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()
        if folder.is_dir():
            check_every_file_parses(folder)
    return killed


def strip_time(history):
    return {"train": [{k: v for k, v in r.items() if k != "time"} for r in history["train"]],
            "diagnostics": history["diagnostics"]}


def train_with_kills(tmp_path, kills, window, seed, steps=400):
    ref, out = tmp_path / "ref", tmp_path / "killed"
    argv = [*TRAIN, "--steps", str(steps)]
    assert main([*argv, "--out", str(ref)]) == 0
    rng = random.Random(seed)
    first = run_with_kills([*argv, "--out", str(out)], out, 1, rng, window)
    more = run_with_kills(["train", "--out", str(out), "--resume", "--quiet"], out, kills - 1,
                          rng, window) if (out / CHECKPOINT).exists() else 0
    if not (out / CHECKPOINT).exists():  # killed before the first checkpoint: start again
        (out / "config.json").unlink(missing_ok=True)
        assert main([*argv, "--out", str(out)]) == 0
    elif not (out / "metrics.json").exists():
        assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0
    check_every_file_parses(out)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    a = torch.load(ref / CHECKPOINT, weights_only=False)
    b = torch.load(out / CHECKPOINT, weights_only=False)
    assert a["step"] == b["step"] == steps
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert strip_time(a["history"]) == strip_time(b["history"])
    ma = json.loads((ref / "metrics.json").read_text())
    mb = json.loads((out / "metrics.json").read_text())
    assert ma["relative_l2"] == mb["relative_l2"] and ma["final_loss"] == mb["final_loss"]
    return first + more


DETERMINISTIC = ("key", "status", "relative_l2", "final_loss", "steps", "final_weights",
                 "lambda_min", "lambda_max", "drift", "angles")


def bench_with_kills(tmp_path, kills, window, seed):
    suite = tmp_path / "faults.toml"
    suite.write_text(SUITE)
    ref, out = tmp_path / "ref", tmp_path / "killed"
    argv = ["bench", "--suite", str(suite), "--quiet", "--out"]
    assert main([*argv, str(ref)]) == 0
    rng = random.Random(seed)
    killed = run_with_kills([*argv, str(out)], out, kills, rng, window)
    assert main([*argv, str(out)]) == 0
    check_every_file_parses(out)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

    def rows(folder):
        latest = B.latest_rows(B.ResultsFile(folder / B.RESULTS_NAME).read())
        return {k: {f: r.get(f) for f in DETERMINISTIC} for k, r in latest.items()}

    assert rows(out) == rows(ref) and len(rows(ref)) == 8
    return killed


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_train_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path):
    assert train_with_kills(tmp_path, kills=3, window=1.2, seed=13) >= 1


def test_bench_killed_at_random_moments_reruns_to_the_uninterrupted_rows(tmp_path):
    assert bench_with_kills(tmp_path, kills=2, window=2.5, seed=13) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_train_killed_ten_times(tmp_path, seed):
    # 3000 steps take a few seconds: most kills land in the training, the others in the export
    train_with_kills(tmp_path, kills=10, window=8.0, seed=seed, steps=3000)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_bench_killed_ten_times(tmp_path, seed):
    bench_with_kills(tmp_path, kills=10, window=4.0, seed=seed)
