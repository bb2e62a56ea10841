"""Helpers for the command-line tests: run ``pinnk`` in-process and check its one-line errors."""

from __future__ import annotations

from solvers._cli import main


def run_cli(capsys, *argv):
    """Run ``pinnk *argv``; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err, *fragments):
    """stderr is one line ``pinnk: error: ...`` (no traceback) containing every fragment."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pinnk: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def default_sigint():
    """``preexec_fn`` for a child that a test interrupts with SIGINT: restore the default
    handler, which a child would otherwise inherit as SIG_IGN when the tests run with SIGINT
    ignored (``nohup pytest &``, some CI runners); Python then installs its KeyboardInterrupt
    handler at start-up as usual."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
