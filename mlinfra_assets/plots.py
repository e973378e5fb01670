"""PNG plots embedded in markdown metadata, so the Dagster UI shows them."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import dagster as dg

from mlinfra_assets.stage import significant


def png_markdown(draw: Callable[[object], None], title: str, size: tuple[float, float] = (6, 3.5)) -> dg.MarkdownMetadataValue:
    """Draw on a fresh matplotlib axis and return it as an inline PNG in markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=90)
    try:
        draw(ax)
        ax.set_title(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    encoded = base64.b64encode(buf.getvalue()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def df_markdown(df) -> dg.MarkdownMetadataValue:  # noqa: ANN001 - a pandas DataFrame
    """A DataFrame as a markdown table, its floats to `stage.DIGITS` significant digits (a small
    p-value stays 3.2e-05, not 0)."""
    shown = df.copy()
    for column in shown.select_dtypes("floating").columns:
        shown[column] = shown[column].map(significant, na_action="ignore")
    return dg.MetadataValue.md(shown.to_markdown(index=False))
