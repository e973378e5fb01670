"""The demo's active-learning learning curves, shown on the demo's annotation queue only.

`benchmarks/active_learning.py` measures them on the demo's card data; they say nothing
about another data set, so the queue shows them only when the spec is the demo's
(`spec.demo` is set).
"""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg

CURVES_PNG = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "active_learning.png"


def curves_markdown(png: Path = CURVES_PNG) -> dg.MarkdownMetadataValue | None:
    """The learning curves the active-learning benchmark saved (strategies vs random), or None."""
    if not png.exists():
        return None
    encoded = base64.b64encode(png.read_bytes()).decode()
    return dg.MetadataValue.md(
        f"Demo data, from `benchmarks/active_learning.py` (see {png.name}):\n\n"
        f"![learning curves](data:image/png;base64,{encoded})"
    )
