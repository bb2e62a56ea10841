"""The documentation site: it builds in strict mode, its API reference covers every public name,
and every tutorial script runs in quick mode.

No network: ``mkdocs build`` fetches nothing (MathJax is referenced by URL for the browser only).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

# Modules whose __all__ the API reference must cover, with the prefix their names carry there.
PUBLIC_MODULES = ["pinnk", "pinnk.ops", "pinnk.weighting", "pinnk.diagnostics", "pinnk.analytic",
                  "pinnk.io", "solvers", "problems"]
# Covered too when present (written alongside the docs).
OPTIONAL_MODULES = ["pinnk.mesh"]

# examples/_*.py are helpers shared by tutorial scripts (imported by them, shown on their pages)
TUTORIALS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def _mkdocs_available() -> bool:
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
        import material  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """``mkdocs build --strict`` into a temporary folder; the built site's path."""
    if not _mkdocs_available():
        pytest.skip("mkdocs, mkdocs-material or mkdocstrings is not installed "
                    "(pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _public_names() -> list[str]:
    names = []
    for mod_name in PUBLIC_MODULES + [m for m in OPTIONAL_MODULES if _importable(m)]:
        mod = importlib.import_module(mod_name)
        for name in mod.__all__:
            if isinstance(getattr(mod, name), type(sys)):  # a submodule: its own page
                names.append(getattr(mod, name).__name__)
            else:
                names.append(f"{mod_name}.{name}")
    return names


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _reference_identifiers() -> set[str]:
    ids = set()
    for page in (DOCS / "reference").glob("*.md"):
        ids.update(re.findall(r"^::: ([\w.]+)\s*$", page.read_text(encoding="utf-8"), re.M))
    return ids


def test_site_builds_strict(site):
    for page in ("index.html", "concepts/index.html", "guide/train/index.html",
                 "reference/pinnk/index.html", "results/accuracy/index.html"):
        assert (site / page).is_file(), page
    concepts = (site / "concepts" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in concepts  # math rendered by MathJax in generic mode
    # every tutorial page shows its script (pymdownx.snippets)
    for script in TUTORIALS:
        assert any(script.stem in p.read_text(encoding="utf-8")
                   for p in (DOCS / "tutorials").glob("*.md")), script.name


def test_reference_lists_every_public_name():
    ids = _reference_identifiers()
    missing = [n for n in _public_names() if n not in ids]
    assert not missing, f"not in docs/reference/*.md as '::: NAME' blocks: {missing}"


def test_reference_renders_every_public_name(site):
    html = "".join(p.read_text(encoding="utf-8") for p in (site / "reference").rglob("*.html"))
    anchors = set(re.findall(r'id="([\w.]+)"', html))
    missing = [n for n in _public_names() if n not in anchors]
    assert not missing, f"no anchor in the built API reference for: {missing}"


@pytest.mark.parametrize("script", TUTORIALS, ids=[s.stem for s in TUTORIALS])
def test_tutorial_runs_quick(script, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path / "out"),
                           "--device", "cpu"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"{script.name} --quick failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "out" / "summary.json").is_file()


def test_tutorials_are_in_the_site():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = "".join(p.read_text(encoding="utf-8") for p in (DOCS / "tutorials").glob("*.md"))
    for script in TUTORIALS:
        assert f'--8<-- "examples/{script.name}"' in pages, script.name
    for page in (DOCS / "tutorials").glob("*.md"):
        assert f"tutorials/{page.name}" in nav, page.name
