"""Benchmark suites: every problem of the zoo × weighting methods × seeds, resumable, in parallel.

A *suite* is data: one TOML file per suite in ``solvers/suites/`` (``quick``, ``standard``,
``full``) naming problem *cases* (a problem, its parameters and a training budget: steps, points,
network, optimizer, ...) and the *methods* to run on each (named weighting specs such as
``trace = "trace:every=100"``). Published errors live in ``solvers/suites/references.toml``; a
case that trains with a published budget names its references.

One training run is a :class:`RunSpec` (case × method × seed), identified by :attr:`RunSpec.key`,
a hash of the problem, its resolved parameters, the method, the seed and the resolved budget.
:func:`run_suite` skips the keys already in the results file, hands the others to an
:class:`Executor` (in-process, a process pool or Ray: strategies passed in, the same rows either
way) and appends one JSON line per finished run as it arrives; a failed run (NaN loss or any
exception) is a row with ``status = "failed"`` and its reason, and the suite goes on.
:func:`summarize` and :func:`write_summary` turn the rows into mean ± std tables (markdown, CSV)
and a plot of the error against the method.

Example::

    suite = load_suite("quick")
    specs = plan(suite, methods=["fixed", "trace"], seeds=2)
    with ProcessExecutor(jobs=2) as ex:
        report = run_suite(specs, "runs/bench/quick", ex)
    write_summary(summarize(report.rows, specs, suite), "runs/bench/quick")
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import hashlib
import io
import json
import math
import multiprocessing
import os
import platform
import signal
import statistics
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._runfolder import lock_folder

SUITES_DIR = Path(__file__).parent / "suites"
REFERENCES_FILE = SUITES_DIR / "references.toml"
RESULTS_NAME = "results.jsonl"

# The budget of a case: everything besides the problem, the method and the seed that decides a
# run's outcome. Network keys go to the model, the rest to the Trainer.
NETWORK_KEYS = ("width", "depth", "activation", "embedding", "positive_outputs")
BUDGET_KEYS = ("steps", "points", "optimizer", "resample_every", "ntk_every", "probe_points",
               "dtype") + NETWORK_KEYS
_CASE_KEYS = ("problem", "params", "label", "methods", "references", "output") + BUDGET_KEYS
_SUITE_KEYS = ("name", "description", "seeds", "methods", "defaults", "cases")
_DEFAULTS_KEYS = BUDGET_KEYS + ("methods", "time_methods")
# What a method given as a table may set besides its weighting (it overrides the case's budget)
METHOD_KEYS = ("weighting", "optimizer", "steps", "dtype", "resample_every")


class BenchError(ValueError):
    """A bad suite file, selection or results file (the message names the culprit)."""


# ------------------------------------------------------------------------------- JSON helpers
def _plain(obj: Any) -> Any:
    """``obj`` as JSON values: tuples → lists, NaN/Inf → None, tensors/numpy → numbers."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _plain(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def _canonical(obj: Any) -> str:
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _hash(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(_canonical(obj).encode("utf-8")).hexdigest()[:n]


# ------------------------------------------------------------------------------------ suites
@dataclass(frozen=True)
class Reference:
    """A published error for a problem with its source.

    ``values`` is a tuple of ``(label, relative L2 error)`` pairs (e.g. ``("plain PINN", 0.897)``)
    for output ``output``; ``setup`` states the published training budget in words.
    """

    id: str
    problem: str
    params: dict
    output: str
    values: tuple
    source: str
    setup: str = ""

    def text(self) -> str:
        """``8.97e-01 plain PINN, 2.02e-02 curriculum (source)``."""
        vals = ", ".join(f"{v:.2e} {label}" for label, v in self.values)
        return f"{vals} ({self.source})"


@dataclass(frozen=True)
class Case:
    """One problem of a suite: name, resolved parameters, resolved budget, methods to run.

    ``budget`` holds every key of ``BUDGET_KEYS`` resolved against the problem's defaults
    (``points`` as a count per term, ``optimizer`` as its config mapping); ``output`` is the
    output whose error the summary table shows (default the problem's first output).
    """

    label: str
    problem: str
    params: dict
    budget: dict
    methods: tuple
    references: tuple = ()
    output: str = ""
    time_dependent: bool = False


@dataclass(frozen=True)
class Suite:
    """A benchmark suite read from a TOML file (see the files in ``solvers/suites/``)."""

    name: str
    description: str
    seeds: int
    methods: dict          # method name -> weighting spec string
    cases: tuple
    path: Path | None = None
    overrides: dict = field(default_factory=dict)  # method name -> its budget overrides

    def case(self, label: str) -> Case:
        for c in self.cases:
            if c.label == label:
                return c
        raise KeyError(label)


def suite_names() -> list[str]:
    """The names of the suites shipped in ``solvers/suites/`` (without the references file)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml") if p.stem != REFERENCES_FILE.stem)


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise BenchError(f"suite: no such file {str(path)!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"suite: {str(path)!r} is not valid TOML ({exc})") from None


def load_references(path: str | os.PathLike = REFERENCES_FILE) -> dict[str, Reference]:
    """The published errors of ``references.toml``, id -> :class:`Reference`."""
    data = _read_toml(Path(path))
    out = {}
    for i, item in enumerate(data.get("reference", [])):
        where = f"{Path(path).name}: reference[{i}]"
        try:
            ref = Reference(id=str(item["id"]), problem=str(item["problem"]),
                            params=dict(item.get("params", {})), output=str(item["output"]),
                            values=tuple((str(v["label"]), float(v["value"]))
                                         for v in item["values"]),
                            source=str(item["source"]), setup=str(item.get("setup", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise BenchError(f"{where}: expected id, problem, output, values (label, value) and "
                             f"source ({type(exc).__name__}: {exc})") from None
        if ref.id in out:
            raise BenchError(f"{where}: duplicate id {ref.id!r}")
        out[ref.id] = ref
    return out


def _suite_path(name: str | os.PathLike) -> Path:
    p = Path(name)
    if p.suffix == ".toml" or p.is_file():
        return p
    if not isinstance(name, str) or name not in suite_names():
        raise BenchError(f"suite: unknown suite {str(name)!r}; available suites: "
                         f"{', '.join(suite_names())} (or a path to a .toml file)")
    return SUITES_DIR / f"{name}.toml"


def load_suite(name: str | os.PathLike) -> Suite:
    """Read and check a suite: a name from :func:`suite_names` or a path to a TOML file.

    File format::

        name = "quick"
        description = "..."
        seeds = 1                                     # default number of seeds (0, 1, ...)
        [methods]                                     # method name -> weighting spec
        fixed = "fixed"
        trace = "trace:every=20"
        causal = "causal:epsilon=1,chunks=8+trace:every=20"
        gn = { weighting = "fixed", optimizer = "gn", steps = 100, dtype = "float64" }
        [defaults]                                    # budget defaults of every case
        steps = 200
        methods = ["fixed", "trace"]                  # run on every case
        time_methods = ["causal"]                     # added on time-dependent problems
        [[cases]]
        problem = "convection"
        params = { beta = 30 }
        points = { residual = 256, initial = 64, periodic = 64 }

    Budget keys (``BUDGET_KEYS``): steps, points (N or per term), optimizer (spec), resample_every,
    ntk_every (default: steps, i.e. NTK diagnostics at the first and the last step only),
    probe_points, dtype, width, depth, activation, embedding, positive_outputs; unset ones take the
    problem's defaults. A case may set ``label`` (default: the problem name), ``methods``,
    ``output`` (the error shown in the table) and ``references`` (ids in ``references.toml``: only
    for a case that trains with the published budget).

    A method is a weighting spec, or a table with ``weighting`` (default ``"fixed"``) and any of
    ``optimizer``, ``steps``, ``dtype``, ``resample_every``, which replace the case's budget for
    that method (e.g. a Gauss–Newton method that needs far fewer, costlier steps).

    Raises:
        BenchError (a ValueError): unknown suite, a bad key or value (the message names the suite
            file and the case).
    """
    path = _suite_path(name)
    data = _read_toml(path)
    src = path.name
    unknown = set(data) - set(_SUITE_KEYS)
    if unknown:
        raise BenchError(f"{src}: unknown key(s) {', '.join(sorted(unknown))}; expected "
                         f"{', '.join(_SUITE_KEYS)}")
    raw_methods = data.get("methods")
    if not isinstance(raw_methods, Mapping) or not raw_methods:
        raise BenchError(f"{src}: [methods] must map method names to weighting specs")
    from pinnk.weighting import from_spec

    from ._optim import optimizer_from_spec

    methods, overrides = {}, {}
    for m, spec in raw_methods.items():
        over: dict = {}
        if isinstance(spec, Mapping):
            bad = set(spec) - set(METHOD_KEYS)
            if bad:
                raise BenchError(f"{src}: method {m!r}: unknown key(s) {', '.join(sorted(bad))}; "
                                 f"expected {', '.join(METHOD_KEYS)}")
            over = {k: v for k, v in spec.items() if k != "weighting"}
            spec = spec.get("weighting", "fixed")
        try:
            from_spec(spec)
            if "optimizer" in over:
                over["optimizer"] = optimizer_from_spec(over["optimizer"]).config()
            for key in ("steps", "resample_every"):
                if key in over and (isinstance(over[key], bool) or not isinstance(over[key], int)
                                    or over[key] < (1 if key == "steps" else 0)):
                    kind = "positive" if key == "steps" else "non-negative"
                    raise ValueError(f"{key}: expected a {kind} integer, got {over[key]!r}")
            if over.get("dtype", "float32") not in ("float32", "float64"):
                raise ValueError(f"dtype: expected 'float32' or 'float64', got {over['dtype']!r}")
        except (TypeError, ValueError) as exc:
            raise BenchError(f"{src}: method {m!r}: {exc}") from None
        methods[m] = spec
        if over:
            overrides[m] = over
    seeds = data.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise BenchError(f"{src}: seeds must be a positive integer, got {seeds!r}")
    defaults = dict(data.get("defaults", {}))
    unknown = set(defaults) - set(_DEFAULTS_KEYS)
    if unknown:
        raise BenchError(f"{src}: [defaults] has unknown key(s) {', '.join(sorted(unknown))}; "
                         f"expected {', '.join(_DEFAULTS_KEYS)}")
    refs = load_references() if REFERENCES_FILE.exists() else {}
    cases = []
    for i, raw in enumerate(data.get("cases", [])):
        case = _make_case(raw, defaults, methods, refs, f"{src}: cases[{i}]")
        if any(c.label == case.label for c in cases):
            raise BenchError(f"{src}: two cases are labelled {case.label!r}; give one a "
                             f"distinct 'label'")
        cases.append(case)
    if not cases:
        raise BenchError(f"{src}: no [[cases]]")
    return Suite(name=str(data.get("name", path.stem)), description=str(data.get("description",
                 "")), seeds=seeds, methods=dict(methods), cases=tuple(cases), path=path,
                 overrides=overrides)


def _make_case(raw: Mapping, defaults: Mapping, methods: Mapping, refs: Mapping,
               where: str) -> Case:
    import problems

    from ._optim import optimizer_from_spec
    from ._train import model_config

    unknown = set(raw) - set(_CASE_KEYS)
    if unknown:
        raise BenchError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected "
                         f"{', '.join(_CASE_KEYS)}")
    name = raw.get("problem")
    try:
        problem = problems.get(name, **dict(raw.get("params", {})))
    except (TypeError, ValueError) as exc:
        raise BenchError(f"{where}: {exc}") from None
    where = f"{where} ({raw.get('label', name)})"
    d = problem.defaults
    merged = {k: v for k, v in defaults.items() if k in BUDGET_KEYS}
    merged.update({k: v for k, v in raw.items() if k in BUDGET_KEYS})
    budget: dict = {}
    try:
        budget["steps"] = int(merged.get("steps", d.steps))
        if budget["steps"] < 1:
            raise ValueError(f"steps: expected a positive integer, got {budget['steps']}")
        budget["points"] = problem.counts(merged.get("points"), problem.term_names())
        opt = merged.get("optimizer", f"adam:lr={d.lr}")
        budget["optimizer"] = optimizer_from_spec(opt).config()
        for key, default in (("resample_every", 0), ("ntk_every", budget["steps"]),
                             ("probe_points", 64)):
            budget[key] = int(merged.get(key, default))
            if budget[key] < (1 if key == "probe_points" else 0):
                raise ValueError(f"{key}: expected a non-negative integer, got {budget[key]}")
        budget["dtype"] = str(merged.get("dtype", "float32"))
        if budget["dtype"] not in ("float32", "float64"):
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {budget['dtype']!r}")
        net = model_config(problem, **{k: merged[k] for k in NETWORK_KEYS if k in merged})
        budget.update(net)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"{where}: {exc}") from None

    time_dependent = problem.time_index is not None
    names = list(raw.get("methods", defaults.get("methods", list(methods))))
    if "methods" not in raw and time_dependent:
        names += [m for m in defaults.get("time_methods", []) if m not in names]
    for m in names:
        if m not in methods:
            raise BenchError(f"{where}: unknown method {m!r}; the suite's methods are "
                             f"{', '.join(methods)}")
        if not time_dependent and _is_causal(methods[m]):
            raise BenchError(f"{where}: method {m!r} ({methods[m]}) is causal, but "
                             f"{problem.name} has no time coordinate")
    if not names:
        raise BenchError(f"{where}: no methods")
    output = str(raw.get("output", problem.output_names[0]))
    if output not in problem.output_names:
        raise BenchError(f"{where}: output {output!r} is not one of "
                         f"{', '.join(problem.output_names)}")
    linked = []
    for rid in raw.get("references", []):
        if rid not in refs:
            raise BenchError(f"{where}: unknown reference {rid!r}; see {REFERENCES_FILE.name}")
        ref = refs[rid]
        mismatch = [k for k, v in ref.params.items()
                    if not _same(problem.params.get(k), v)]
        if ref.problem != problem.name or mismatch:
            raise BenchError(f"{where}: reference {rid!r} is for {ref.problem} "
                             f"{_params_text(ref.params)}, not this case")
        linked.append(ref)
    return Case(label=str(raw.get("label", problem.name)), problem=problem.name,
                params=_plain(problem.params), budget=_plain(budget), methods=tuple(names),
                references=tuple(linked), output=output, time_dependent=time_dependent)


def _is_causal(spec: str) -> bool:
    return "causal" in [part.split(":")[0].strip() for part in spec.split("+")]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    return _plain(a) == _plain(b)


def _params_text(params: Mapping) -> str:
    return ", ".join(f"{k}={_canonical(v)}" for k, v in params.items()) or "(defaults)"


# ------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class RunSpec:
    """One training run of a suite: a case, a method (name and weighting spec), a seed."""

    suite: str
    case: str
    problem: str
    params: dict
    method: str
    weighting: str
    seed: int
    budget: dict

    @property
    def budget_hash(self) -> str:
        """A hash of the resolved budget (12 hex digits)."""
        return _hash(self.budget, 12)

    @property
    def key(self) -> str:
        """The identity of the run in a results file: a hash of problem, parameters, method
        (name and resolved weighting config), seed and budget (16 hex digits)."""
        from pinnk.weighting import from_spec

        return _hash({"problem": self.problem, "params": self.params, "method": self.method,
                      "weighting": from_spec(self.weighting).config(), "seed": self.seed,
                      "budget": self.budget})

    def task(self, device: str = "cpu", threads: int | None = 1) -> dict:
        """The picklable description handed to :func:`execute`."""
        return {"key": self.key, "suite": self.suite, "case": self.case,
                "problem": self.problem, "params": self.params, "method": self.method,
                "weighting": self.weighting, "seed": self.seed, "budget": self.budget,
                "budget_hash": self.budget_hash, "device": device, "threads": threads}


def plan(suite: Suite, problems: Sequence[str] | None = None,
         methods: Sequence[str] | None = None, seeds: int | None = None) -> list[RunSpec]:
    """The runs of ``suite``: every case × its methods × seeds 0..seeds-1, in suite order.

    Args:
        suite: a :class:`Suite`.
        problems: only cases of these problem names or case labels (default all).
        methods: only these method names (default all of each case).
        seeds: the number of seeds (default the suite's).

    Raises:
        BenchError: a problem or method not in the suite; seeds < 1; an empty selection.
    """
    import problems as zoo

    if seeds is None:
        seeds = suite.seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int):
        raise TypeError(f"seeds: expected an integer, got {type(seeds).__name__}")
    if seeds < 1:
        raise BenchError(f"seeds: expected a positive number of seeds, got {seeds}")
    labels = [c.label for c in suite.cases]
    names = list(dict.fromkeys(c.problem for c in suite.cases))
    if problems is not None:
        for p in problems:
            if p not in labels and p not in names:
                where = (f"is not in suite {suite.name!r}" if p in zoo.names()
                         else "is not a problem of the zoo")
                raise BenchError(f"problem {p!r} {where}; the suite has "
                                 f"{', '.join(dict.fromkeys(names + labels))}")
    all_methods = list(dict.fromkeys(m for c in suite.cases for m in c.methods))
    if methods is not None:
        for m in methods:
            if m not in all_methods:
                where = (f"is not run by suite {suite.name!r}" if m in suite.methods
                         else f"is not a method of suite {suite.name!r}")
                raise BenchError(f"method {m!r} {where}; its methods are "
                                 f"{', '.join(all_methods)}")
    out = []
    for c in suite.cases:
        if problems is not None and c.label not in problems and c.problem not in problems:
            continue
        for m in c.methods:
            if methods is not None and m not in methods:
                continue
            for s in range(seeds):
                budget = c.budget
                if m in suite.overrides:
                    budget = {**c.budget, **suite.overrides[m]}
                    if "steps" in suite.overrides[m] and "ntk_every" in c.budget:
                        budget["ntk_every"] = min(c.budget["ntk_every"], budget["steps"])
                out.append(RunSpec(suite.name, c.label, c.problem, c.params, m,
                                   suite.methods[m], s, budget))
    if not out:
        raise BenchError("the selection is empty: none of the chosen methods runs on the chosen "
                         "problems")
    keys = [r.key for r in out]
    if len(set(keys)) != len(keys):
        raise BenchError(f"suite {suite.name!r}: two cases have the same problem, parameters and "
                         f"budget")
    return out


# ------------------------------------------------------------------------------- one run
def _versions() -> dict:
    import torch

    import pinnk

    return {"pinnk": pinnk.__version__, "torch": torch.__version__,
            "python": platform.python_version()}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failed_row(task: Mapping, reason: str, wall: float | None = None) -> dict:
    """The results row of a run that did not finish, with its ``reason``."""
    row = _base_row(task)
    row.update({"status": "failed", "reason": reason, "wall_time_s": wall})
    return row


def _base_row(task: Mapping) -> dict:
    return {"key": task["key"], "suite": task["suite"], "case": task["case"],
            "problem": task["problem"], "params": task["params"], "method": task["method"],
            "weighting": task["weighting"], "seed": task["seed"], "budget": task["budget"],
            "budget_hash": task["budget_hash"], "status": None, "reason": None,
            "relative_l2": None, "wall_time_s": None, "total_time_s": None, "cpu_time_s": None,
            "steps": None,
            "device": None, "threads": task.get("threads"), "final_loss": None,
            "final_weights": None, "diagnostics_step": None, "lambda_min": None,
            "lambda_max": None, "condition": None, "drift": None, "angles": None,
            "versions": _versions(), "host": platform.node(), "pid": os.getpid(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _train_run(task: Mapping):
    """Train the run described by ``task`` (no files written); returns the TrainResult."""
    import problems

    from ._train import Trainer

    b = task["budget"]
    problem = problems.get(task["problem"], **task["params"])
    trainer = Trainer(problem, weighting=task["weighting"], optimizer=b["optimizer"],
                      steps=b["steps"], points=b["points"], resample_every=b["resample_every"],
                      device=task.get("device", "cpu"), dtype=b["dtype"], seed=task["seed"],
                      ntk_every=b["ntk_every"], probe_points=b["probe_points"],
                      model_options={k: b[k] for k in NETWORK_KEYS if k in b},
                      export=False, progress=False)
    return trainer.run()


def execute(task: Mapping) -> dict:
    """Run one task (from :meth:`RunSpec.task`) and return its results row.

    Never raises for a failed run: a :class:`~solvers.TrainingError` (NaN/Inf loss) or any other
    exception becomes a row with ``status = "failed"`` and the reason. ``KeyboardInterrupt``
    propagates. Sets torch's CPU threads to ``task["threads"]`` for the run (and restores them).
    """
    import torch

    threads = task.get("threads")
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        result = _train_run(task)
    except Exception as exc:  # noqa: BLE001 - any failure of one run is recorded, not raised
        return failed_row(task, _one_line(exc), time.perf_counter() - t0)
    finally:
        if threads:
            torch.set_num_threads(old)
    row = _base_row(task)
    m = result.metrics
    row.update({"status": "ok", "relative_l2": m["relative_l2"],
                "wall_time_s": m["wall_time_s"], "total_time_s": time.perf_counter() - t0,
                "cpu_time_s": time.process_time() - c0,
                "steps": m["steps"], "device": m["device"], "final_loss": m.get("final_loss"),
                "final_weights": m.get("final_weights")})
    diags = result.history.get("diagnostics") or []
    if diags:
        last = diags[-1]
        row.update({"diagnostics_step": last.get("step"), "lambda_min": last.get("lambda_min"),
                    "lambda_max": last.get("lambda_max"), "condition": last.get("condition"),
                    "drift": last.get("drift"), "angles": last.get("angles")})
    rel = [v for v in m["relative_l2"].values()]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in rel):
        row.update({"status": "failed", "reason": "the relative L2 error is not finite"})
    return _plain(row)


# ------------------------------------------------------------------------------ results file
@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block is done, then raise KeyboardInterrupt; so that a
    line is never half written. Only in the main thread (elsewhere a plain block)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # nohup: Ctrl-C stays ignored
        yield
        return
    caught = []
    old = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        raise KeyboardInterrupt


class ResultsFile:
    """An append-only JSON-lines file of results rows, safe against crashes and Ctrl-C.

    Each row is one complete line written by a single ``os.write`` on an ``O_APPEND`` descriptor,
    then fsync'd (with SIGINT held meanwhile). A reader ignores a torn last line (a crash during
    a write); :meth:`append` first cuts such a tail off so that the next line starts clean.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def read(self) -> list[dict]:
        """The rows, in file order. A torn (unterminated or unreadable) last line is ignored.

        Raises:
            BenchError: a line before the last one is not a JSON object.
        """
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        rows = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            last = i == len(lines) - 1  # no newline after it: possibly torn
            try:
                row = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                if last:
                    break
                raise BenchError(f"results: line {i + 1} of {str(self.path)!r} is not JSON; "
                                 f"the file was edited or damaged") from None
            if not isinstance(row, dict):
                if last:
                    break
                raise BenchError(f"results: line {i + 1} of {str(self.path)!r} is not a row")
            rows.append(row)
        return rows

    def _repair(self) -> None:
        """Cut a torn last line (bytes after the last newline) off the file."""
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb+") as fh:
            fh.seek(max(0, size - 65536))
            tail = fh.read()
            if tail.endswith(b"\n"):
                return
            data = self.path.read_bytes()
            cut = data.rfind(b"\n") + 1
            fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())

    def append(self, row: Mapping) -> None:
        """Append ``row`` as one line (flushed and fsync'd before returning)."""
        line = (json.dumps(_plain(row), allow_nan=False, separators=(",", ":")) + "\n")
        data = line.encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _sigint_deferred():
            self._repair()
            # 0o666 less the umask: the mode a plain open() gives
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)


def latest_rows(rows: Iterable[Mapping]) -> dict[str, dict]:
    """key -> the last row of that key (a rerun of a failed run replaces it)."""
    out: dict = {}
    for r in rows:
        if "key" in r:
            out[r["key"]] = dict(r)
    return out


# ---------------------------------------------------------------------------------- executors
RunFn = Callable[[Mapping], dict]


@runtime_checkable
class Executor(Protocol):
    """How runs are carried out: ``run(fn, tasks)`` yields ``(task, row)`` as each run finishes
    (in any order), with ``row = fn(task)`` computed somewhere; a run whose worker died yields a
    failed row. ``close()`` releases the workers; executors are context managers."""

    name: str
    jobs: int

    def run(self, fn: RunFn, tasks: Sequence[Mapping]) -> Iterator[tuple[Mapping, dict]]: ...

    def close(self) -> None: ...


class _Base:
    name = "base"
    jobs = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the workers (nothing to do here)."""


def _check_jobs(jobs: Any) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise TypeError(f"jobs: expected an integer, got {type(jobs).__name__}")
    if jobs < 1:
        raise ValueError(f"jobs: expected a positive number of parallel runs, got {jobs}")
    return jobs


def _check_threads(threads: Any) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads: expected an integer or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads: expected a positive number of torch threads, got {threads}")
    return threads


class LocalExecutor(_Base):
    """Runs one task after the other in this process."""

    name = "local"

    def __init__(self, jobs: int = 1):
        if _check_jobs(jobs) != 1:
            raise ValueError(f"jobs: the local executor runs one task at a time, got {jobs}; use "
                             f"--executor process or ray for parallel runs")
        self.jobs = 1

    def run(self, fn: RunFn, tasks: Sequence[Mapping]) -> Iterator[tuple[Mapping, dict]]:
        for task in tasks:
            yield task, fn(task)


def _worker_init(threads: int | None) -> None:
    # Ctrl-C goes to the whole process group; the parent decides what happens (it cancels the
    # pending runs and terminates the workers), so the workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads:
        import torch

        torch.set_num_threads(threads)


class ProcessExecutor(_Base):
    """A local process pool (``concurrent.futures``, spawn start method): ``jobs`` runs at a time,
    each worker with ``threads`` torch threads (set per task from the task's ``threads``).

    At most ``jobs`` runs are in flight, so that a worker that dies (killed, out of memory) fails
    only the runs it may have been running; the pool is then rebuilt and the suite goes on.
    """

    name = "process"

    def __init__(self, jobs: int = 2, threads: int | None = 1):
        self.jobs = _check_jobs(jobs)
        self.threads = _check_threads(threads)
        self._pool: cf.ProcessPoolExecutor | None = None

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.jobs,
                                      mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_worker_init, initargs=(self.threads,))

    def run(self, fn: RunFn, tasks: Sequence[Mapping]) -> Iterator[tuple[Mapping, dict]]:
        queue = list(tasks)[::-1]
        pending: dict = {}
        if self._pool is None:
            self._pool = self._new_pool()
        try:
            while queue or pending:
                while queue and len(pending) < self.jobs:
                    task = queue.pop()
                    pending[self._pool.submit(fn, task)] = task
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                broken = False
                for fut in done:
                    task = pending.pop(fut)
                    try:
                        row = fut.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        row = failed_row(task, "BrokenProcessPool: a worker process died "
                                               "during this run or next to it")
                    except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                        row = failed_row(task, _one_line(exc))
                    yield task, row
                if broken:
                    for fut, task in list(pending.items()):
                        pending.pop(fut)
                        yield task, failed_row(task, "BrokenProcessPool: a worker process "
                                                     "died during this run or next to it")
                    self._terminate()
                    self._pool = self._new_pool()
        except BaseException:
            self._terminate()
            raise

    def _terminate(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)

    def close(self) -> None:
        """Shut the pool down (waits for the workers to exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("the ray executor needs Ray: pip install 'pinnk[ray]' (or pip install "
                          "ray)") from None
    return ray


class RayExecutor(_Base):
    """Ray: one remote task per run, ``jobs`` at a time.

    Without ``address`` a local Ray instance is started with ``num_cpus=jobs`` (no dashboard) and
    shut down by :meth:`close`; with ``address`` (``"auto"`` or ``"ray://host:10001"``) the runs go
    to that existing cluster (whose workers must have pinnk installed) and :meth:`close` only
    disconnects. If Ray is already initialised in this process it is used and left running.
    Ray is imported here, lazily: it is an optional dependency (``pip install 'pinnk[ray]'``).
    """

    name = "ray"

    def __init__(self, jobs: int = 2, address: str | None = None, threads: int | None = 1,
                 init_options: Mapping | None = None):
        self.jobs = _check_jobs(jobs)
        self.threads = _check_threads(threads)
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"address: expected a Ray cluster address such as 'auto' or "
                             f"'ray://host:10001', got {address!r}")
        self.address = address
        ray = _import_ray()
        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            opts = {"include_dashboard": False, "logging_level": "ERROR",
                    "log_to_driver": False}
            if address is None:
                # Threads are set per task by execute(); a runtime_env with OMP_NUM_THREADS would
                # make Ray start dedicated workers through its runtime-env agent (much slower).
                opts["num_cpus"] = self.jobs
                # Ray starts its workers at nice 15: on a busy machine they would then get a
                # fraction of a core and the wall times in the rows would not compare with the
                # other executors'.
                opts["_system_config"] = {"worker_niceness": 0}
            else:
                opts["address"] = address
            opts = {k: v for k, v in opts.items() if v is not None}
            opts.update(dict(init_options or {}))
            ray.init(**opts)
            self._owned = True

    def run(self, fn: RunFn, tasks: Sequence[Mapping]) -> Iterator[tuple[Mapping, dict]]:
        ray = self._ray
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        queue = list(tasks)[::-1]
        pending: dict = {}
        try:
            while queue or pending:
                while queue and len(pending) < self.jobs:
                    task = queue.pop()
                    pending[remote.remote(task)] = task
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    task = pending.pop(ref)
                    try:
                        row = ray.get(ref)
                    except KeyboardInterrupt:
                        raise
                    except Exception as exc:  # noqa: BLE001 - worker crash, task error
                        row = failed_row(task, _one_line(exc).split("\n")[0][:500])
                    yield task, row
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        """Shut the local Ray instance down (or disconnect from the cluster)."""
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False


EXECUTORS = ("local", "process", "ray")


def make_executor(name: str, jobs: int | None = None, address: str | None = None,
                  threads: int | None = 1) -> Executor:
    """An executor by name: ``"local"``, ``"process"`` or ``"ray"``.

    ``jobs`` defaults to 1 for local and to the number of CPUs otherwise; ``address`` is for Ray
    only.

    Raises:
        ValueError: unknown name, bad jobs/threads, address with a non-Ray executor.
        ImportError: ``"ray"`` without Ray installed.
    """
    if name not in EXECUTORS:
        raise ValueError(f"executor: unknown executor {name!r}; expected one of "
                         f"{', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise ValueError("address: only the ray executor connects to a cluster")
    if name == "local":
        return LocalExecutor(1 if jobs is None else jobs)
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    if name == "process":
        return ProcessExecutor(jobs, threads)
    return RayExecutor(jobs, address, threads)


# ------------------------------------------------------------------------------- the runner
@dataclass
class BenchReport:
    """What :func:`run_suite` did: the rows of the selection (latest per key), how many runs it
    carried out now, how many it skipped as already done, and how many failed."""

    rows: list
    ran: int
    skipped: int
    failed: int
    results: Path


def run_suite(specs: Sequence[RunSpec], out: str | os.PathLike, executor: Executor, *,
              device: str = "cpu", threads: int | None = 1, retry_failed: bool = False,
              progress: Callable[[int, int, dict], None] | None = None,
              fn: RunFn = execute) -> BenchReport:
    """Run the runs of ``specs`` not yet in ``out/results.jsonl`` and append their rows.

    Main arguments:
        specs: the runs (from :func:`plan`).
        out: the output folder; its ``results.jsonl`` is read (finished runs are skipped) and
            appended to, one complete line per run as it finishes.
        executor: an :class:`Executor` (:class:`LocalExecutor`, :class:`ProcessExecutor`,
            :class:`RayExecutor`).

    Other arguments:
        device: the training device of each run (``"cpu"``, ``"cuda"``, ``"auto"``).
        threads: torch CPU threads per run (None: torch's default).
        retry_failed: run again the runs whose last row failed (default: they count as done).
        progress: ``progress(done, total, row)`` after each row is written.
        fn: the function that runs a task (default :func:`execute`).

    Returns:
        A :class:`BenchReport`. ``KeyboardInterrupt`` propagates; the file then holds every row
        finished before it, each complete.

    Raises:
        ValueError: ``out`` cannot be written, or another process is running a suite into it
            (the folder is locked while the runs go on).
    """
    from ._train import resolve_device

    if not isinstance(executor, Executor):
        raise TypeError(f"executor: expected an Executor (local, process or ray), got "
                        f"{type(executor).__name__}")
    threads = _check_threads(threads)
    device = str(resolve_device(device))
    out = Path(out)
    results = ResultsFile(out / RESULTS_NAME)
    with lock_folder(out, "out"):  # one suite run per folder at a time
        done = latest_rows(results.read())
        todo, skipped = [], 0
        for s in specs:
            prev = done.get(s.key)
            if prev is not None and (prev.get("status") == "ok" or not retry_failed):
                skipped += 1
            else:
                todo.append(s.task(device, threads))
        ran = failed = 0
        for _task, row in executor.run(fn, todo):
            results.append(row)
            ran += 1
            failed += row.get("status") != "ok"
            if progress is not None:
                progress(ran, len(todo), row)
    latest = latest_rows(results.read())
    rows = [latest[s.key] for s in specs if s.key in latest]
    return BenchReport(rows=rows, ran=ran, skipped=skipped, failed=failed, results=results.path)


# ----------------------------------------------------------------------------------- summary
def _stats(values: Sequence[float]) -> tuple:
    """(mean, sample standard deviation (None for one value), min, max)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    return mean, std, min(values), max(values)


@dataclass
class Cell:
    """The runs of one case and one method: error statistics per output over the ok seeds."""

    case: str
    method: str
    n_ok: int
    n_failed: int
    errors: dict            # output -> (mean, std, min, max)
    wall_time_s: float | None
    lambda_min: float | None
    reasons: list = field(default_factory=list)
    #: mean over the ok seeds of the mean cos α over the (regular, residual) term pairs
    cos_mean: float | None = None


@dataclass
class Summary:
    """The summary of a suite's rows: one :class:`Cell` per (case, method) in suite order."""

    suite: str
    cases: list             # Case objects of the selection, in order
    methods: list           # method names in order
    cells: dict             # (case label, method) -> Cell
    rows: int

    def best(self, case: Case) -> str | None:
        """The method with the lowest mean error of the case's table output."""
        scores = [(c.errors[case.output][0], m) for m in self.methods
                  if (c := self.cells.get((case.label, m))) and case.output in c.errors]
        return min(scores)[1] if scores else None


def summarize(rows: Iterable[Mapping], specs: Sequence[RunSpec], suite: Suite) -> Summary:
    """Mean ± std over seeds per case and method, from the rows of the runs of ``specs``.

    Only the latest row per key of ``specs`` counts; failed rows are counted (and their reasons
    kept) but not averaged.
    """
    latest = latest_rows(rows)
    wanted = [s for s in specs if s.key in latest]
    labels = list(dict.fromkeys(s.case for s in specs))
    cases = [suite.case(lbl) for lbl in labels]
    methods = list(dict.fromkeys(s.method for s in specs))
    groups: dict = {}
    for s in wanted:
        groups.setdefault((s.case, s.method), []).append(latest[s.key])
    cells = {}
    for (lbl, m), rs in groups.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        errors = {}
        outputs = list(dict.fromkeys(o for r in ok for o in r["relative_l2"]))
        for out in outputs:
            vals = [r["relative_l2"][out] for r in ok if r["relative_l2"].get(out) is not None]
            if vals:
                errors[out] = _stats(vals)
        walls = [r["wall_time_s"] for r in ok if r.get("wall_time_s") is not None]
        lmins = [r["lambda_min"] for r in ok if r.get("lambda_min") is not None]
        cells[(lbl, m)] = Cell(lbl, m, len(ok), len(rs) - len(ok), errors,
                               statistics.fmean(walls) if walls else None,
                               statistics.fmean(lmins) if lmins else None,
                               [f"seed {r['seed']}: {r.get('reason')}" for r in rs
                                if r.get("status") != "ok"], _mean_cos(ok))
    return Summary(suite.name, cases, methods, cells, len(wanted))


def _mean_cos(rows: Sequence[Mapping]) -> float | None:
    """Mean over runs of the mean (over term pairs) of the mean per-point cos α, from each
    run's last diagnostics record; None when no run recorded angles."""
    per_run = []
    for r in rows:
        means = [s["mean"] for s in (r.get("angles") or {}).values()
                 if isinstance(s, Mapping) and s.get("mean") is not None]
        if means:
            per_run.append(statistics.fmean(means))
    return statistics.fmean(per_run) if per_run else None


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2e}"


def _ntk_text(cell: Cell | None) -> str:
    if cell is None or (cell.lambda_min is None and cell.cos_mean is None):
        return "—"
    parts = [f"λ_min {cell.lambda_min:.1e}" if cell.lambda_min is not None else "",
             f"cos α {cell.cos_mean:+.2f}" if cell.cos_mean is not None else ""]
    return ", ".join(p for p in parts if p)


def _cell_text(cell: Cell | None, output: str) -> str:
    if cell is None:
        return "—"
    if output not in cell.errors:
        return f"failed ({cell.n_failed})" if cell.n_failed else "—"
    mean, std, _, _ = cell.errors[output]
    text = _fmt(mean) + (f" ± {_fmt(std)}" if std is not None else "")
    if cell.n_failed:
        text += f" ({cell.n_failed} failed)"
    return text


def _budget_text(b: Mapping) -> str:
    opt = b["optimizer"]
    kind = opt.get("kind", "?")
    lr = opt.get("lr", (opt.get("adam") or {}).get("lr"))
    pts = "/".join(str(v) for v in b["points"].values())
    emb = f", {b['embedding']['kind']} embedding" if b.get("embedding") else ""
    return (f"{b['steps']} steps, {b['depth']}×{b['width']} {b['activation']}{emb}, "
            f"{kind}{f' lr {lr:g}' if lr is not None else ''}, points {pts}")


def markdown(summary: Summary) -> str:
    """The summary as markdown: the error table (best mean per row in bold), the budgets,
    references and failures."""
    ms = summary.methods
    lines = [f"# Benchmark suite `{summary.suite}`", "",
             f"Relative L2 error of the output named in each row, mean ± sample standard "
             f"deviation over the seeds that finished ({summary.rows} runs). Best mean per row "
             f"in **bold**. Written by `pinnk bench`; do not edit by hand.", ""]
    has_ref = any(c.references for c in summary.cases)
    head = ["problem", "output"] + ms + (["reference (published, same budget)"] if has_ref
                                        else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in summary.cases:
        best = summary.best(case)
        cells = []
        for m in ms:
            if m not in case.methods:
                cells.append("n/a")
                continue
            t = _cell_text(summary.cells.get((case.label, m)), case.output)
            cells.append(f"**{t}**" if m == best else t)
        row = [case.label, case.output] + cells
        if has_ref:
            row.append("; ".join(r.text() for r in case.references
                                 if r.output == case.output) or "")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## NTK diagnostics at the end of training", "",
              "λ_min of Θ* (with the run's final weights) on the probe points and the mean cos α "
              "between each regular and each residual/derivative term, from each run's last "
              "diagnostics record, mean over the seeds. Θ* is computed in float64; a λ_min of "
              "either sign at the round-off level of λ_max (|λ_min| ≲ 1e-12 λ_max) means Θ* is "
              "singular on the probe points (more points than the network resolves).", "",
              "| problem | " + " | ".join(ms) + " |", "|" + "---|" * (len(ms) + 1)]
    for case in summary.cases:
        lines.append(f"| {case.label} | " + " | ".join(
            "n/a" if m not in case.methods else _ntk_text(summary.cells.get((case.label, m)))
            for m in ms) + " |")
    lines += ["", "## Cases", "", "| problem | parameters | budget | mean wall time per run |",
              "|---|---|---|---|"]
    for case in summary.cases:
        walls = [c.wall_time_s for m in ms if (c := summary.cells.get((case.label, m)))
                 and c.wall_time_s is not None]
        wall = f"{statistics.fmean(walls):.1f} s" if walls else "—"
        lines.append(f"| {case.label} | {_params_text(case.params)} | "
                     f"{_budget_text(case.budget)} | {wall} |")
    others = _other_references(summary)
    if others:
        lines += ["", "## Published errors at other budgets", "",
                  "Not comparable with the table (a different budget); for orientation only.", ""]
        lines += [f"* {case.label}: {ref.text()}; setup: {ref.setup}" for case, ref in others]
    fails = [(k, c) for k, c in summary.cells.items() if c.reasons]
    if fails:
        lines += ["", "## Failed runs", ""]
        for (lbl, m), c in fails:
            lines += [f"* {lbl} / {m}: {r}" for r in c.reasons]
    return "\n".join(lines) + "\n"


def _other_references(summary: Summary) -> list:
    try:
        refs = load_references() if REFERENCES_FILE.exists() else {}
    except BenchError:
        return []
    out = []
    for case in summary.cases:
        linked = {r.id for r in case.references}
        for ref in refs.values():
            if ref.id in linked or ref.problem != case.problem:
                continue
            if all(_same(case.params.get(k), v) for k, v in ref.params.items()):
                out.append((case, ref))
    return out


CSV_FIELDS = ("suite", "case", "problem", "params", "method", "weighting", "output", "n_ok",
              "n_failed", "mean", "std", "min", "max", "best", "mean_wall_time_s",
              "mean_lambda_min", "mean_cos", "reference")


def csv_text(summary: Summary, methods: Mapping | None = None) -> str:
    """The summary as CSV: one line per case, method and output (every output, not only the
    table's)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for case in summary.cases:
        best = summary.best(case)
        for m in summary.methods:
            cell = summary.cells.get((case.label, m))
            if cell is None:
                continue
            outs = list(cell.errors) or [case.output]
            for out in outs:
                mean, std, lo, hi = cell.errors.get(out, (None, None, None, None))
                ref = "; ".join(r.text() for r in case.references if r.output == out)
                w.writerow([summary.suite, case.label, case.problem, _canonical(case.params), m,
                            (methods or {}).get(m, ""), out, cell.n_ok, cell.n_failed,
                            _num(mean), _num(std), _num(lo), _num(hi),
                            int(m == best and out == case.output), _num(cell.wall_time_s),
                            _num(cell.lambda_min), _num(cell.cos_mean), ref])
    return buf.getvalue()


def _num(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def plot(summary: Summary, path: str | os.PathLike) -> Path:
    """A PNG of the error (table output, log scale) against the method: one line per case, mean
    with a bar from min to max over the seeds. Written atomically."""
    from matplotlib.figure import Figure

    from pinnk.io import write_with

    ms = summary.methods
    fig = Figure(figsize=(max(6.0, 1.4 * len(ms) + 4.0), 5.0))
    ax = fig.add_subplot(1, 1, 1)
    markers = "osD^v<>phX*"
    plotted = False
    for i, case in enumerate(summary.cases):
        xs, ys, lo, hi = [], [], [], []
        for j, m in enumerate(ms):
            c = summary.cells.get((case.label, m))
            if c is None or case.output not in c.errors:
                continue
            mean, _, mn, mx = c.errors[case.output]
            if not (mean > 0 and math.isfinite(mean)):
                continue
            xs.append(j + (i - len(summary.cases) / 2) * 0.02)
            ys.append(mean)
            lo.append(mean - mn)
            hi.append(mx - mean)
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker=markers[i % len(markers)], capsize=2,
                        linewidth=1, label=f"{case.label} ({case.output})")
            plotted = True
    ax.set_xticks(range(len(ms)))
    ax.set_xticklabels(ms)
    ax.set_xlim(-0.5, len(ms) - 0.5)
    if plotted:
        ax.set_yscale("log")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xlabel("method (loss weighting)")
    ax.set_ylabel("relative L2 error (mean; bar: min–max over seeds)")
    ax.set_title(f"pinnk bench: suite {summary.suite}")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    write_with(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    return path


def write_summary(summary: Summary, out: str | os.PathLike,
                  methods: Mapping | None = None) -> list[Path]:
    """Write ``summary.md``, ``summary.csv`` and ``summary.png`` into ``out`` (atomically);
    returns their paths."""
    from pinnk.io import write_text

    out = Path(out)
    files = [out / "summary.md", out / "summary.csv", out / "summary.png"]
    write_text(files[0], markdown(summary))
    write_text(files[1], csv_text(summary, methods))
    plot(summary, files[2])
    return files


def read_summary_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``summary.csv`` (strings), for checks and tooling."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


__all__ = ["Suite", "Case", "Reference", "RunSpec", "BenchError", "BenchReport", "Executor",
           "LocalExecutor", "ProcessExecutor", "RayExecutor", "ResultsFile", "Summary",
           "EXECUTORS", "suite_names", "load_suite", "load_references", "plan", "execute",
           "failed_row", "make_executor", "run_suite", "summarize", "write_summary", "markdown",
           "csv_text", "plot", "latest_rows", "read_summary_csv"]
