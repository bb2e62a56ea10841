"""Training benchmarks (scripts; they print ratios measured side by side in one run)."""

import json
from pathlib import Path


def read_rows(md: str | Path) -> tuple[Path, dict]:
    """The JSON file kept next to a results page ``md`` (same name, ``.json``) and the rows it
    holds (``{}`` when it does not exist yet)."""
    js = Path(md).with_suffix(".json")
    return js, (json.loads(js.read_text())["rows"] if js.exists() else {})
