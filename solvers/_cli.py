"""The ``pinnk`` command line: list the problem zoo and train a PINN on one of its problems.

::

    pinnk problems [NAME ...]
    pinnk train PROBLEM [--param k=v ...] [--weighting SPEC] [--optimizer SPEC] [--steps N]
                [--points N | --points name=N ...] [--resample-every K] [--sampler SPEC]
                [--hold-last K]
                [--device auto|cpu|cuda] [--dtype float32|float64] [--seed S] [--width W]
                [--depth D] [--activation A]
                [--ntk-every K] [--checkpoint-every K] [--log-every K] [--probe-points N]
                [--config FILE] [--out DIR] [--resume] [--compile] [--export | --no-export]
                [--quiet]
    pinnk --version

Exit codes, the same for every command (errors are one line ``pinnk: error: ...`` on stderr, never
a traceback):

* 0: success.
* 1: a run started and failed: training stopped on a NaN/Inf (named with its term and step), a
  write failed while running (disk full), some runs of a benchmark suite failed.
* 2: bad input, found before any work: an option, a config file, a problem parameter, a size that
  cannot fit in memory, a damaged checkpoint, an output folder that cannot be written or that
  another run is writing into.
* 130: interrupted (Ctrl-C), also during start-up; for ``train`` the last checkpoint is kept,
  continue with ``pinnk train --out DIR --resume``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROG = "pinnk"

# The keys of a --config file (a dash may be written for an underscore). A run's own
# config.json (Trainer.config()) uses the same keys, with "problem" as {"name", "params"},
# resolved weighting/optimizer/sampler mappings and "versions" (informational, ignored).
CONFIG_KEYS = ("problem", "params", "weighting", "optimizer", "steps", "points", "resample_every",
               "sampler", "adaptive_start", "hold_last", "device", "dtype", "seed", "model",
               "width", "depth", "activation", "ntk_every", "probe_points", "checkpoint_every",
               "log_every", "out", "resume", "compile", "export", "quiet", "windows",
               "continuation", "accept_loss", "retries", "versions")
MODEL_KEYS = ("width", "depth", "activation", "embedding", "positive_outputs")
_BOOL_KEYS = ("resume", "compile", "export", "quiet", "adaptive_start")

# Options of `pinnk train` passed to the Trainer as they are (when given).
_TRAINER_KEYS = ("steps", "points", "resample_every", "adaptive_start", "hold_last", "dtype",
                 "seed", "ntk_every", "probe_points", "checkpoint_every", "log_every", "compile",
                 "export")


class CLIError(Exception):
    """A bad option or input: reported as one line and exit status 2."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = f"missing key {exc.args[0]!r}"
    return text or type(exc).__name__


def _error(message: str, prefix: str = "error: ") -> None:
    print(f"{PROG}: {prefix}{' '.join(str(message).split())}", file=sys.stderr)


# --------------------------------------------------------------------------------- the parser
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors raise :class:`CLIError` (one line, exit 2)."""

    def error(self, message):  # noqa: D401 - argparse's hook
        raise CLIError(f"{message} (see '{self.prog} --help')")


def _version() -> str:
    import pinnk
    import torch

    return f"{PROG} {pinnk.__version__} (torch {torch.__version__})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pinnk`` (subcommands ``problems`` and ``train``)."""
    parser = _Parser(prog=PROG, description="Physics-informed neural networks trained with "
                     "NTK-driven loss weights.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("problems", help="list the problems of the zoo",
                       description="List the problems: name, parameters with their defaults "
                       "(as --param values), description.")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these problems")

    S = argparse.SUPPRESS  # options not given stay absent, so a --config file can supply them
    t = sub.add_parser(
        "train", help="train a PINN on a problem", argument_default=S,
        description="Train a PINN on a problem of the zoo and write the run folder (config, "
        "history, metrics, checkpoint, exports, plots).",
        epilog="Options override the --config file. Parameter values are JSON (--param beta=30, "
        "--param 'left=[1,0,1]', --param periodic_embedding=true); anything that is not JSON "
        "is taken as a string. Examples of specs: --weighting trace:every=100,kind=sum, "
        "--weighting causal:epsilon=1+trace, --optimizer adam:lr=1e-3,decay_rate=0.9, "
        "--optimizer adam+lbfgs:switch=0.8, --optimizer gn, --optimizer adam+gn:switch=2000, "
        "--sampler rad:k=1,c=1,candidates=4 --resample-every "
        "100.")
    t.add_argument("problem", nargs="?", metavar="PROBLEM",
                   help="problem name (see 'pinnk problems'); optional with --config")
    t.add_argument("--param", action="append", metavar="NAME=VALUE", dest="param",
                   help="a problem parameter (repeatable); VALUE is JSON")
    t.add_argument("--weighting", metavar="SPEC", help="loss weighting: fixed (default), "
                   "fixed:NAME=W,..., trace[:every=N,kind=mean|sum,momentum=M], "
                   "gradnorm[:every=N,momentum=M], causal[:epsilon=E,chunks=M]+STRATEGY")
    t.add_argument("--optimizer", metavar="SPEC", help="adam[:lr=..,decay_rate=..,"
                   "decay_steps=..] (default: adam at the problem's learning rate), "
                   "lbfgs[:lr=..,history_size=..,max_iter=..], gn[:damping=..,mode=lm|line,"
                   "method=auto|dense|cg,kernel_points=..] (Gauss-Newton on the NTK), and "
                   "sequences adam+lbfgs[:switch=..], adam+gn[:switch=..,gn_damping=..], "
                   "adam+lbfgs+gn[:switch=A/B]")
    t.add_argument("--steps", type=int, metavar="N", help="optimizer steps (default: the "
                   "problem's)")
    t.add_argument("--windows", type=int, metavar="K", help="march in time: train K equal "
                   "time windows in turn, each from the previous window's network with its "
                   "values at the window's start as initial condition (--steps and --points "
                   "per window; run folders OUT/window-k, the options in OUT/config.json; "
                   "resumable)")
    t.add_argument("--continuation", metavar="NAME=V1[:N1],V2[:N2],...",
                   help="continuation in a problem parameter: train stage k at NAME=Vk for Nk "
                   "steps (default --steps), each stage from the network the stage before "
                   "ended with (e.g. viscosity=0.02:60,0.01:60,0.005:80 for a shock); run "
                   "folders OUT/stage-k, the options in OUT/config.json, the result in "
                   "OUT/continuation.json; resumable")
    t.add_argument("--accept-loss", type=float, metavar="L", dest="accept_loss",
                   help="with --continuation: the result is the last stage whose final loss "
                   "is <= L")
    t.add_argument("--retries", metavar="R|R1,R2,...",
                   help="with --continuation and --accept-loss: train a stage that ends above "
                   "L again, from where it started with other points, up to R times (one "
                   "count for every stage or one per stage)")
    t.add_argument("--adaptive-start", action="store_true", dest="adaptive_start",
                   help="with --continuation: a stage's first points are drawn by the "
                   "--sampler from the previous stage's network")
    t.add_argument("--points", action="append", metavar="N|NAME=N",
                   help="collocation points per term: N for every term, or NAME=N for one term "
                   "(repeatable)")
    t.add_argument("--resample-every", type=int, metavar="K", dest="resample_every",
                   help="draw new collocation points every K steps (0: never; default)")
    t.add_argument("--sampler", metavar="SPEC", help="how --resample-every redraws the points: "
                   "uniform (default), rad[:k=K,c=C,candidates=M,local=L,scale=S] "
                   "(residual-based adaptive: keep 1 of M candidates with probability ~ "
                   "|r|^k/mean|r|^k + c, L more candidates per point near those, spread S; "
                   "needs --resample-every)")
    t.add_argument("--hold-last", type=int, metavar="K", dest="hold_last",
                   help="no redraw of the points in the last K steps, so that the final network "
                   "fitted the points it ends on (default 0)")
    t.add_argument("--device", metavar="DEVICE", help="auto (default: CUDA when available), cpu, "
                   "cuda, cuda:N")
    t.add_argument("--dtype", choices=("float32", "float64"), help="default float32; float64 "
                   "with a Gauss-Newton optimizer")
    t.add_argument("--seed", type=int, metavar="S", help="random seed (default 0)")
    t.add_argument("--width", type=int, metavar="W", help="hidden width")
    t.add_argument("--depth", type=int, metavar="D", help="hidden layers")
    t.add_argument("--activation", metavar="A", help="tanh, sin, gelu, softplus, erf or relu")
    t.add_argument("--ntk-every", type=int, metavar="K", dest="ntk_every",
                   help="steps between NTK diagnostics (0: none; default steps/10)")
    t.add_argument("--probe-points", type=int, metavar="N", dest="probe_points",
                   help="points per term for the NTK diagnostics (default 64)")
    t.add_argument("--checkpoint-every", type=int, metavar="K", dest="checkpoint_every",
                   help="steps between checkpoints (default steps/10)")
    t.add_argument("--log-every", type=int, metavar="K", dest="log_every",
                   help="steps between history records (default steps/2000)")
    t.add_argument("--config", metavar="FILE", help="a JSON file of options (or a run folder / "
                   "its config.json, to repeat that run)")
    t.add_argument("--out", metavar="DIR", help="the run folder (default runs/PROBLEM-TIMESTAMP)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its "
                   "checkpoint.pt (its config.json supplies the options not given)")
    t.add_argument("--compile", action="store_true", help="torch.compile the network's "
                   "derivative pass (slower start, faster steps)")
    t.add_argument("--export", action="store_true", dest="export",
                   help="write the solution exports and plots (the default; overrides a "
                   "--no-export saved in the config of a resumed run)")
    t.add_argument("--no-export", action="store_false", dest="export",
                   help="skip the solution exports and plots")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    for module in _extra_commands():
        module.add_parser(sub)
    return parser


# Further subcommands live in their own modules: each defines ``NAME``, ``add_parser(sub)``
# (adds its parser to the subparsers ``sub``; parsers are :class:`_Parser`, so usage errors raise
# CLIError) and ``run(args) -> int`` (the exit status; bad input raises CLIError, ValueError or
# TypeError, reported here as one line with exit status 2).
_EXTRA_COMMANDS = ("solvers._cli_bench", "solvers._cli_paper", "solvers._cli_report")


def _extra_commands() -> list:
    import importlib

    out = []
    for name in _EXTRA_COMMANDS:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return out


# ------------------------------------------------------------------------------ option values
def parse_value(text: str) -> Any:
    """A --param value: JSON (numbers, true/false, lists, ...), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(items: list[str]) -> dict:
    """``["beta=30", "left=[1,0,1]"]`` -> ``{"beta": 30, "left": [1, 0, 1]}``."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise CLIError(f"--param: expected NAME=VALUE, got {item!r}")
        out[key] = parse_value(value.strip())
    return out


def parse_points(items: list[str]) -> int | dict:
    """``["256"]`` -> 256; ``["residual=1000", "initial=100"]`` -> a mapping term -> count."""
    counts: dict = {}
    single = None
    for item in items:
        name, eq, value = item.rpartition("=") if "=" in item else ("", "", item)
        try:
            n = int(value.strip())
        except ValueError:
            raise CLIError(f"--points: expected N or NAME=N with an integer N, got {item!r}") \
                from None
        if eq:
            if not name.strip():
                raise CLIError(f"--points: expected NAME=N, got {item!r}")
            counts[name.strip()] = n
        elif single is not None:
            raise CLIError("--points: give one count N for every term, or NAME=N per term")
        else:
            single = n
    if single is not None and counts:
        raise CLIError("--points: give either one count N for every term or NAME=N per term, "
                       "not both")
    return single if single is not None else counts


def parse_continuation(text: str) -> dict:
    """``"viscosity=0.02:60,0.01:60"`` -> ``{"parameter": "viscosity", "values": [0.02, 0.01],
    "steps": [60, 60]}`` (``steps`` absent when no stage names its count; then --steps)."""
    name, eq, rest = text.partition("=")
    form = "expected NAME=V1[:N1],V2[:N2],... (e.g. viscosity=0.02:60,0.01:80)"
    if not eq or not name.strip() or not rest.strip():
        raise CLIError(f"--continuation: {form}, got {text!r}")
    values, steps = [], []
    for item in rest.split(","):
        v, colon, n = item.strip().partition(":")
        try:
            values.append(float(v))
            steps.append(int(n) if colon else None)
        except ValueError:
            raise CLIError(f"--continuation: {form}; {item.strip()!r} is not VALUE or "
                           f"VALUE:STEPS with a number and an integer") from None
    if not all(math.isfinite(v) for v in values) or any(n is not None and n < 1
                                                        for n in steps):
        raise CLIError(f"--continuation: expected finite values and step counts >= 1, got "
                       f"{text!r}")
    out = {"parameter": name.strip(), "values": values}
    if any(n is not None for n in steps):
        if any(n is None for n in steps):
            raise CLIError(f"--continuation: give the steps of every stage (V:N) or of none, "
                           f"got {text!r}")
        out["steps"] = steps
    return out


def parse_retries(text: str) -> int | list:
    """``"2"`` -> 2; ``"0,0,2"`` -> ``[0, 0, 2]`` (one count per stage)."""
    try:
        counts = [int(c) for c in text.split(",")]
    except ValueError:
        raise CLIError(f"--retries: expected an integer R or R1,R2,... (one per stage), got "
                       f"{text!r}") from None
    return counts[0] if len(counts) == 1 and "," not in text else counts


# ---------------------------------------------------------------------------- config files
def read_config(path: str | Path) -> dict:
    """Read a --config file (JSON object; a folder means its config.json), normalised to the
    option keys (see :func:`normalize_config`)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CLIError(f"config: no such file {str(p)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"config: cannot read {str(p)!r} ({_one_line(exc)})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"config: {str(p)!r} is not valid JSON ({exc.msg} at line {exc.lineno} "
                       f"column {exc.colno})") from None
    return normalize_config(data, str(p))


def normalize_config(data: Any, source: str = "config") -> dict:
    """Check a config mapping and bring it to the option keys.

    Accepts the option keys (``CONFIG_KEYS``, dashes allowed for underscores) and the format of a
    run's own ``config.json`` (``Trainer.config()``): ``problem`` as ``{"name", "params"}``, the
    model spec under ``model``, weighting and optimizer as mappings; ``versions`` is ignored.
    Top-level ``width``/``depth``/``activation`` are merged into ``model``.
    """
    if not isinstance(data, Mapping):
        raise CLIError(f"config: {source!r} must hold a JSON object of options, got "
                       f"{type(data).__name__}")
    cfg = {}
    for key, value in data.items():
        k = str(key).replace("-", "_")
        if k not in CONFIG_KEYS:
            raise CLIError(f"config: unknown key {key!r} in {source!r}; expected "
                           f"{', '.join(CONFIG_KEYS)}")
        cfg[k] = value
    cfg.pop("versions", None)

    prob = cfg.get("problem")
    if isinstance(prob, Mapping):
        extra = set(prob) - {"name", "params"}
        if extra or not isinstance(prob.get("name"), str):
            raise CLIError(f"config: 'problem' must be a name or {{\"name\": ..., \"params\": "
                           f"{{...}}}} in {source!r}")
        params = dict(prob.get("params") or {})
        if "params" in cfg:
            if not isinstance(cfg["params"], Mapping):
                raise CLIError(f"config: 'params' must be an object in {source!r}")
            params.update(cfg["params"])
        cfg["problem"], cfg["params"] = prob["name"], params
    elif prob is not None and not isinstance(prob, str):
        raise CLIError(f"config: 'problem' must be a problem name in {source!r}")
    if "params" in cfg and not isinstance(cfg["params"], Mapping):
        raise CLIError(f"config: 'params' must be an object in {source!r}")

    model = cfg.get("model")
    if model is None:
        model = {}
    elif not isinstance(model, Mapping):
        raise CLIError(f"config: 'model' must be an object in {source!r}")
    elif "custom" in model:
        raise CLIError(f"config: the run in {source!r} used a custom model "
                       f"({model['custom']}); it cannot be rebuilt from its config")
    model = dict(model)
    for k in ("width", "depth", "activation"):
        if k in cfg:
            model[k] = cfg.pop(k)
    unknown = set(model) - set(MODEL_KEYS)
    if unknown:
        raise CLIError(f"config: unknown model option(s) {', '.join(sorted(unknown))} in "
                       f"{source!r}; expected {', '.join(MODEL_KEYS)}")
    cfg["model"] = model

    for k in _BOOL_KEYS:
        if k in cfg and not isinstance(cfg[k], bool):
            raise CLIError(f"config: {k!r} must be true or false in {source!r}, got "
                           f"{cfg[k]!r}")
    if "out" in cfg and not isinstance(cfg["out"], str):
        raise CLIError(f"config: 'out' must be a folder name in {source!r}")
    if "continuation" in cfg:
        cfg["continuation"] = _check_continuation(cfg["continuation"], source)
    if "points" in cfg and isinstance(cfg["points"], Mapping):
        cfg["points"] = dict(cfg["points"])
    return cfg


def merge_options(base: Mapping, cli: Mapping) -> dict:
    """The options of a run: ``base`` (a normalised config) overridden by the command line.

    ``params`` and ``model`` are merged key by key; ``points`` given per term on the command line
    are merged into per-term ``points`` of the config; every other option replaces the config's.
    """
    opts = dict(base)
    opts["params"] = dict(base.get("params") or {})
    opts["model"] = dict(base.get("model") or {})
    for key, value in cli.items():
        if key == "params":
            opts["params"].update(value)
        elif key == "model":
            opts["model"].update(value)
        elif key == "points" and isinstance(value, dict) and isinstance(opts.get("points"),
                                                                         dict):
            opts["points"] = {**opts["points"], **value}
        else:
            opts[key] = value
    return opts


def cli_options(args: argparse.Namespace) -> dict:
    """The options given on the command line of ``pinnk train`` (absent ones left out)."""
    given = vars(args)
    out = {}
    for key in ("problem", "weighting", "optimizer", "steps", "resample_every", "sampler",
                "hold_last", "device", "dtype", "seed", "ntk_every", "probe_points",
                "checkpoint_every", "log_every", "out", "resume", "compile", "export", "quiet",
                "windows", "accept_loss", "adaptive_start"):
        if given.get(key) is not None:
            out[key] = given[key]
    if "continuation" in given:
        out["continuation"] = parse_continuation(given["continuation"])
    if "retries" in given:
        out["retries"] = parse_retries(given["retries"])
    if "param" in given:
        out["params"] = parse_params(given["param"])
    if "points" in given:
        out["points"] = parse_points(given["points"])
    model = {k: given[k] for k in ("width", "depth", "activation") if k in given}
    if model:
        out["model"] = model
    return out


def options_to_kwargs(opts: Mapping) -> dict:
    """Trainer keyword arguments (without problem/out/progress) from merged options."""
    from pinnk.weighting import from_spec

    from ._optim import optimizer_from_spec
    from ._sampling import sampler_from_spec

    kw = {k: opts[k] for k in _TRAINER_KEYS if k in opts}
    for key, build in (("weighting", from_spec), ("optimizer", optimizer_from_spec),
                       ("sampler", sampler_from_spec)):
        spec = opts.get(key)
        if spec is None:
            continue
        try:
            kw[key] = build(spec)
        except (TypeError, ValueError, KeyError) as exc:
            msg = _one_line(exc)
            raise CLIError(msg if msg.startswith(key) else f"{key} {_format_value(spec)}: {msg}") \
                from None
    if opts.get("model"):
        kw["model_options"] = dict(opts["model"])
    return kw


def default_out(problem: str, root: str | Path = "runs") -> Path:
    """``runs/<problem>-<YYYYmmdd-HHMMSS>`` (with ``-2``, ``-3``, ... if that exists)."""
    base = Path(root) / f"{problem}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


# ------------------------------------------------------------------------------- the commands
def _format_value(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


def cmd_problems(args: argparse.Namespace) -> int:
    import problems

    names = problems.names()
    wanted = list(args.names) or names
    for name in wanted:
        if name not in names:
            problems.problem_class(name)  # raises the ValueError listing the names
    width = max(len(n) for n in wanted)
    for name in wanted:
        params = " ".join(f"{k}={_format_value(v)}" for k, v in problems.parameters(name).items())
        print(f"{name:<{width}}  {params or '(no parameters)'}  -- {problems.describe(name)}")
    return 0


def _run_config(run_dir: Path) -> dict:
    """The options of the run in ``run_dir``: its config.json, else its checkpoint's config,
    else none (an empty mapping)."""
    from ._train import CHECKPOINT

    from ._runfolder import read_checkpoint

    if (run_dir / "config.json").is_file():
        return read_config(run_dir / "config.json")
    if (run_dir / CHECKPOINT).is_file():
        try:
            config = read_checkpoint(run_dir / CHECKPOINT, "--resume")["config"]
        except ValueError as exc:
            raise CLIError(_one_line(exc)) from None
        return normalize_config(config, str(run_dir / CHECKPOINT))
    return {}


def _resolve_device(opts: Mapping, from_cli: bool) -> Any:
    from ._train import resolve_device

    device = opts.get("device", "auto")
    try:
        return resolve_device(device)
    except (ValueError, TypeError) as exc:
        hint = "" if from_cli else (f" (device={device!r} comes from the config; pass --device "
                                    f"to choose another)")
        raise CLIError(_one_line(exc) + hint) from None


def prepare(args: argparse.Namespace):
    """Resolve the options of ``pinnk train`` and build the :class:`Trainer` (restored from its
    checkpoint with --resume). Raises :class:`CLIError`, ValueError or TypeError on bad input."""
    from ._train import Trainer

    opts, problem, out, device, kwargs = _resolve(args)
    resume = bool(opts.get("resume", False))
    trainer = Trainer(problem, device=device, out=out, progress=not opts.get("quiet", False),
                      **kwargs)
    trainer.lock_out()  # before any work: refused when another run writes into the folder
    _check_run_folder(out, resume)  # again, under the lock
    if resume:
        trainer.load_checkpoint()
    return trainer


def _resolve(args: argparse.Namespace) -> tuple:
    """The merged options, the problem, the run folder, the device and the trainer's keyword
    arguments of ``pinnk train``."""
    import problems

    cli, opts = _options(args)
    resume = bool(opts.get("resume", False))
    name = opts.get("problem")
    if not name:
        raise CLIError("train: no problem given; name one (see 'pinnk problems') or pass "
                       "--config FILE")
    cont = opts.get("continuation")
    staged = ("stage-0" if cont is not None
              else "window-0" if opts.get("windows") is not None else None)
    if cont is None:
        for key, flag in (("accept_loss", "--accept-loss"), ("retries", "--retries")):
            if key in opts:
                raise CLIError(f"{flag}: applies to the stages of a --continuation; this run "
                               f"has none")
    out = opts.get("out")
    _check_run_folder(out, resume, staged)
    out = Path(out) if out else default_out(name)

    device = _resolve_device(opts, "device" in cli)
    kwargs = options_to_kwargs(opts)
    params = opts.get("params", {})
    try:
        problems.problem_class(name)
    except (TypeError, ValueError) as exc:
        raise CLIError(_one_line(exc)) from None
    try:
        problem = problems.get(name, **params)
        if cont is not None:  # (the continued parameter must be one of the problem's)
            problems.get(name, **{**params, cont["parameter"]: cont["values"][0]})
    except (TypeError, ValueError) as exc:
        raw = [k for k, v in cli.get("params", {}).items() if isinstance(v, str)]
        hint = (f" (--param values are JSON, e.g. --param 'left=[1,0,1]'; {', '.join(raw)} "
                f"was read as a string)" if raw and not isinstance(exc, problems.ParameterError)
                else "")
        msg = _one_line(exc)
        raise CLIError((msg if msg.startswith(name) else f"{name}: {msg}") + hint) from None
    return opts, problem, out, device, kwargs


def _options(args: argparse.Namespace) -> tuple:
    """The command line's options and the merged options of ``pinnk train`` (a --config file,
    or with --resume the run folder's options, overridden by the command line)."""
    cli = cli_options(args)
    resume = bool(cli.get("resume", False))
    if "config" in vars(args):
        base = read_config(args.config)
    elif resume and cli.get("out"):
        if not Path(cli["out"]).is_dir():
            raise CLIError(f"--resume: there is no run folder {cli['out']!r}; nothing to resume")
        base = _run_config(Path(cli["out"]))
        ran = base.get("problem")
        if ran and cli.get("problem") and cli["problem"] != ran:
            raise CLIError(f"--resume: {cli['out']!r} holds a run of {ran}, not of "
                           f"{cli['problem']}; resume it without naming a problem, or choose "
                           f"another --out")
    else:
        base = {}
    return cli, merge_options(base, cli)


def cmd_train_march(args: argparse.Namespace) -> int:
    """``pinnk train --windows K``: time marching (:func:`solvers.train_marching`)."""
    from problems import ParameterError

    from ._marching import train_marching
    from ._train import TrainingError

    try:
        windows = _options(args)[1]["windows"]
        if not isinstance(windows, int) or isinstance(windows, bool) or windows < 1:
            raise CLIError(f"--windows: expected a number of windows >= 1, got {windows!r}")
        opts, problem, out, device, kwargs = _resolve(args)
        if "continuation" in opts:
            raise CLIError("--windows: a run is marched in time or continued in a parameter "
                           "(--continuation), not both")
        if problem.time_index is None:
            raise CLIError(f"--windows: {problem.name} has no time coordinate to march in")
        resume = bool(opts.get("resume", False))
        if not resume:
            _save_options(out, opts)
    except (CLIError, ValueError, TypeError, ParameterError) as exc:
        return _input_error(exc)
    except OSError as exc:
        return _run_error(exc, out)
    k = {"window": 0}
    steps = kwargs.pop("steps", problem.defaults.steps)
    try:
        res = train_marching(problem, windows, steps=steps, device=device, out=out,
                             progress=not opts.get("quiet", False), resume=resume,
                             callback=lambda tr, j: k.update(window=j), **kwargs)
    except (TrainingError, OSError, ValueError, TypeError) as exc:
        return _run_error(exc, out, f"window {k['window']}, ")
    except KeyboardInterrupt:
        _error(f"interrupted in window {k['window']} of {windows}; continue with: "
               f"{_resume_hint(out)}", prefix="")
        return 130
    m = res.metrics
    print(f"{problem.name}: {len(res.results)} windows, {m['steps']} steps in "
          f"{m['wall_time_s']:.1f} s on {res.results[-1].metrics['device']}")
    for j, w in enumerate(m["windows"]):
        print(f"  window {j} t in [{w['t'][0]:g}, {w['t'][1]:g}]: {w['steps']} steps, final "
              f"loss {w['final_loss']:.3e}")
    rel = ", ".join(f"{n} {v:.3e}" for n, v in m["relative_l2"].items())
    print(f"relative L2 error: {rel}")
    print(f"run folder: {out} (window-0 ... window-{len(res.results) - 1}, march.json)")
    return 0


def _save_options(out: Path, opts: Mapping) -> None:
    """Write the options of a run of several run folders to OUT/config.json (without ``out``
    and ``resume``): what ``--out OUT --resume`` and ``--config OUT`` read back."""
    from pinnk import io as pio

    pio.write_json(Path(out) / "config.json",
                   {k: v for k, v in opts.items() if k not in ("out", "resume")})


def _check_continuation(cont: Any, source: str) -> dict:
    """A config's ``continuation``: ``{"parameter": NAME, "values": [...], "steps": [...]}``
    (``steps`` optional, one positive count per value)."""
    bad = CLIError(f"config: 'continuation' must be {{\"parameter\": NAME, \"values\": "
                   f"[V1, ...], \"steps\": [N1, ...] (optional)}} in {source!r}")
    if not isinstance(cont, Mapping) or set(cont) - {"parameter", "values", "steps"}:
        raise bad
    name, values, steps = cont.get("parameter"), cont.get("values"), cont.get("steps")
    if (not isinstance(name, str) or not isinstance(values, list) or not values
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) for v in values)):
        raise bad
    out = {"parameter": name, "values": [float(v) for v in values]}
    if steps is not None:
        if (not isinstance(steps, list) or len(steps) != len(values)
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                           for n in steps)):
            raise CLIError(f"continuation: expected one step count >= 1 per stage "
                           f"({len(values)}) in {source!r}, got {steps!r}")
        out["steps"] = list(steps)
    return out


def cmd_train_continuation(args: argparse.Namespace) -> int:
    """``pinnk train --continuation NAME=V1[:N1],...``: a continuation in a problem parameter
    (:func:`solvers.train_continuation`), resumable with ``--out OUT --resume``."""
    from pinnk import io as pio
    from problems import ParameterError

    from ._train import TrainingError, check_continuation, train_continuation

    try:
        opts, problem, out, device, kwargs = _resolve(args)
        cont = opts["continuation"]
        resume = bool(opts.get("resume", False))
        if "steps" in cont and "steps" in opts:
            raise CLIError("--steps: the stages of this --continuation name their own steps "
                           "(NAME=V1:N1,...); give one or the other")
        n = cont.get("steps") or kwargs.get("steps", problem.defaults.steps)
        kwargs.pop("steps", None)
        params = {k: v for k, v in opts.get("params", {}).items() if k != cont["parameter"]}
        check_continuation(cont["values"], n, opts.get("accept_loss"), opts.get("retries", 0))
        if not resume:
            _save_options(out, opts)
    except (CLIError, ValueError, TypeError, ParameterError) as exc:
        return _input_error(exc)
    except OSError as exc:
        return _run_error(exc, out)
    at = {"stage": 0}
    values = cont["values"]

    def where(trainer) -> None:
        at["stage"] = int(Path(trainer.out).name.split("-")[1])

    try:
        res = train_continuation(
            problem.name, cont["parameter"], values, steps=n, params=params, out=out,
            accept_loss=opts.get("accept_loss"), retries=opts.get("retries", 0), resume=resume,
            device=device, progress=not opts.get("quiet", False), callback=where, **kwargs)
    except (TrainingError, OSError, ValueError, TypeError) as exc:
        return _run_error(exc, out, f"stage {at['stage']}, ")
    except KeyboardInterrupt:
        _error(f"interrupted in stage {at['stage']} of {len(values)} ({cont['parameter']} = "
               f"{values[at['stage']]:g}); continue with: {_resume_hint(out)}", prefix="")
        return 130
    stages = [{cont["parameter"]: v, "steps": r.metrics["steps"],
               "final_loss": r.metrics["final_loss"], "wall_time_s": r.metrics["wall_time_s"],
               "relative_l2": r.metrics["relative_l2"], "attempts": a}
              for v, r, a in zip(values, res, res.attempts)]
    summary = {"parameter": cont["parameter"], "final_stage": res.final_stage,
               "relative_l2": res.final.metrics["relative_l2"],
               "wall_time_s": res.wall_time_s, "stages": stages}
    try:
        pio.write_json(Path(out) / "continuation.json", summary)
    except OSError as exc:
        return _run_error(exc, out)
    print(f"{problem.name}: {len(res)} stages in {cont['parameter']}, "
          f"{sum(st['steps'] for st in stages)} steps in {res.wall_time_s:.1f} s on "
          f"{res.final.metrics['device']}")
    for k, st in enumerate(stages):
        tries = f" ({len(st['attempts'])} attempts)" if len(st["attempts"]) > 1 else ""
        mark = "  <- result" if k == res.final_stage else ""
        print(f"  stage {k} {cont['parameter']} = {values[k]:g}: {st['steps']} steps, final "
              f"loss {st['final_loss']:.3e}{tries}{mark}")
    rel = ", ".join(f"{k} {v:.3e}" for k, v in summary["relative_l2"].items())
    print(f"relative L2 error (stage {res.final_stage}): {rel}")
    print(f"run folder: {out} (stage-0 ... stage-{len(res) - 1}, config.json, "
          f"continuation.json)")
    return 0


def _check_run_folder(out: Any, resume: bool, staged: str | None = None) -> None:
    """--resume needs a checkpoint in --out; a new run refuses a folder that holds one. A run
    of several run folders (``staged``: its first one, ``stage-0`` of a continuation or
    ``window-0`` of a march) resumes from its options, OUT/config.json, and a new one refuses
    a folder that holds that first run folder."""
    from ._train import CHECKPOINT

    if staged is not None:
        kind = "continuation" if staged.startswith("stage") else "marched run"
        if resume and not out:
            raise CLIError(f"--resume needs --out DIR, the folder of the {kind}")
        if resume and not (Path(out) / "config.json").is_file():
            raise CLIError(f"--resume: no {kind} in {str(out)!r} (no config.json); nothing "
                           f"to resume")
        if not resume and out and ((Path(out) / staged).exists()
                                   or (Path(out) / CHECKPOINT).exists()):
            raise CLIError(f"out: {str(out)!r} already holds a run; pass --resume to continue "
                           f"it, or choose another --out")
        return
    if resume:
        if not out:
            raise CLIError("--resume needs --out DIR, the run folder that holds checkpoint.pt")
        if not (Path(out) / CHECKPOINT).is_file():
            raise CLIError(f"--resume: no {CHECKPOINT} in {str(out)!r}; nothing to resume")
    elif out and (Path(out) / CHECKPOINT).exists():
        raise CLIError(f"out: {str(out)!r} already holds a run ({CHECKPOINT}); pass --resume to "
                       f"continue it, or choose another --out")
    elif out and any((Path(out) / d).exists() for d in ("stage-0", "window-0")):
        raise CLIError(f"out: {str(out)!r} holds a continuation or a marched run; pass --resume "
                       f"to continue it, or choose another --out")


def _summary(trainer, result) -> None:
    m = result.metrics
    loss = m.get("final_loss")
    loss_text = f", final loss {loss:.3e}" if isinstance(loss, float) else ""
    print(f"{trainer.problem.name}: {m['steps']} steps in {m['wall_time_s']:.1f} s on "
          f"{m['device']}{loss_text}")
    rel = ", ".join(f"{k} {v:.3e}" for k, v in m["relative_l2"].items())
    print(f"relative L2 error: {rel}")
    out = result.out
    print(f"run folder: {out}")
    names = []
    for f in result.files:
        f = Path(f)
        try:
            names.append(str(f.relative_to(out)))
        except ValueError:
            names.append(str(f))
    print(f"files: {', '.join(names)}")


def _input_error(exc: BaseException) -> int:
    """Bad input (a CLIError, ValueError, TypeError or ParameterError): one line, status 2."""
    _error(str(exc) if isinstance(exc, CLIError) else _one_line(exc))
    return 2


def _run_error(exc: BaseException, out: Any, where: str = "") -> int:
    """A run that failed: a TrainingError or an unwritable run folder exit with status 1, bad
    input that only the run could see with 2; ``where`` prefixes the run folder's mention."""
    from ._train import TrainingError

    if isinstance(exc, TrainingError):
        _error(f"{_one_line(exc)} ({where}run folder: {out})")
        return 1
    if isinstance(exc, OSError):
        _error(f"cannot write the run folder {str(out)!r}: {_one_line(exc)}")
        return 1
    return _input_error(exc)


def _resume_hint(out: Path) -> str:
    return f"{PROG} train --out {shlex.quote(str(out))} --resume"


def cmd_train(args: argparse.Namespace) -> int:
    from problems import ParameterError

    try:
        opts = _options(args)[1]
    except CLIError as exc:
        return _input_error(exc)
    if opts.get("windows") is not None:
        return cmd_train_march(args)
    if "continuation" in opts:
        return cmd_train_continuation(args)

    from ._train import TrainingError

    trainer = None
    try:
        try:
            trainer = prepare(args)
        except (CLIError, ValueError, TypeError, ParameterError) as exc:
            return _input_error(exc)
        try:
            result = trainer.run()
        except (TrainingError, OSError, ValueError, TypeError) as exc:
            return _run_error(exc, trainer.out)
    except KeyboardInterrupt:
        if trainer is None:
            _error("interrupted before training started", prefix="")
        elif trainer.checkpoint_step is not None:
            _error(f"interrupted at step {trainer.step}; the last checkpoint (step "
                   f"{trainer.checkpoint_step}) is kept in {trainer.out}; continue with: "
                   f"{_resume_hint(trainer.out)}", prefix="")
        else:
            _error(f"interrupted at step {trainer.step}, before the first checkpoint; nothing to "
                   f"resume", prefix="")
        return 130
    _summary(trainer, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``pinnk`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status (see the
    module docstring: 0 success, 1 a failed run, 2 bad input, 130 interrupted)."""
    try:
        with _one_line_warnings():
            return _dispatch(argv)
    except KeyboardInterrupt:  # also while torch and the commands are imported
        _error("interrupted", prefix="")
        return 130


def _dispatch(argv: list[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except CLIError as exc:
        _error(str(exc))
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        names = ", ".join(["problems", "train"] + [m.NAME for m in _extra_commands()])
        _error(f"a command is required: one of {names} (see 'pinnk --help')")
        return 2
    if args.command == "problems":
        try:
            return cmd_problems(args)
        except ValueError as exc:
            _error(_one_line(exc))
            return 2
    if args.command == "train":
        return cmd_train(args)
    module = next(m for m in _extra_commands() if m.NAME == args.command)
    try:
        return module.run(args)
    except CLIError as exc:
        _error(str(exc))
        return 2
    except (ValueError, TypeError) as exc:
        _error(_one_line(exc))
        return 2
    except OSError as exc:  # a write that failed while running
        _error(_one_line(exc))
        return 1


@contextlib.contextmanager
def _one_line_warnings():
    """Show warnings as one line ``pinnk: warning: ...`` (not file, line and source)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
