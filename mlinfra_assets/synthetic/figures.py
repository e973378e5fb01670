"""Plots of the synthetic stage, as PNG markdown for Dagster metadata."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from mlinfra_assets.plots import png_markdown


def class_bars(table: pd.DataFrame, columns: list[str], title: str, hline: float | None = None) -> dg.MarkdownMetadataValue:
    """Grouped bars, one group per class (`table.class`), one bar per column, each with its value."""

    counts = all(float(v).is_integer() for c in columns for v in table[c])
    fmt = "{:,.0f}" if counts else "{:.3g}"  # on each bar: a small class stays readable beside a large one

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        x = np.arange(len(table))
        width = 0.8 / len(columns)
        for i, column in enumerate(columns):
            bars = ax.bar(x + i * width, table[column], width, label=column)
            ax.bar_label(bars, fmt=fmt, fontsize=7, padding=1)
        ax.margins(y=0.12)
        ax.set_xticks(x + width * (len(columns) - 1) / 2, table["class"])
        if hline is not None:
            ax.axhline(hline, color="black", linestyle="--", linewidth=1, label=f"target {hline:g}")
        ax.legend(fontsize=8)

    return png_markdown(draw, title)


def column_scores(per_column: pd.DataFrame, threshold: float) -> dg.MarkdownMetadataValue:
    """Horizontal bars: SDV column-shape score per column, with the quality threshold."""
    ordered = per_column.dropna(subset=["shape"]).sort_values("shape")

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        ax.barh(ordered["column"], ordered["shape"], color="tab:blue")
        ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        ax.set_xlim(0, 1)
        ax.set_xlabel("column shape score (1 = same distribution)")
        ax.legend(fontsize=8, loc="lower right")

    return png_markdown(draw, "Synthetic vs real, per column", size=(6, 0.3 * len(ordered) + 1.5))
