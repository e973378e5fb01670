"""PNG plots embedded in markdown metadata, so the Dagster UI shows them."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import dagster as dg
import numpy as np

from mlinfra_assets.stage import significant

# where a point's label may go (offset in points from the point), nearest first
LABEL_OFFSETS = [(6, 0), (6, 9), (6, -9), (-6, 0), (-6, 9), (-6, -9), (0, 13), (0, -13),
                 (6, 20), (6, -20), (-6, 20), (-6, -20), (6, 32), (6, -32), (-6, 32), (-6, -32)]
LEADER = {"arrowstyle": "-", "color": "grey", "lw": 0.5, "shrinkA": 1, "shrinkB": 5}  # label to its point


def png_markdown(draw: Callable[[object], None], title: str, size: tuple[float, float] = (6, 3.5)) -> dg.MarkdownMetadataValue:
    """Draw on a fresh matplotlib axis and return it as an inline PNG in markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=90)
    try:
        ax.set_title(title)  # before drawing: `label_points` measures the final layout
        draw(ax)
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


def label_points(ax, xs, ys, names: list[str], fontsize: int = 8) -> None:  # noqa: ANN001 - a matplotlib Axes
    """Name each point of a scatter plot with no label over another label or a point.

    Points closer than 10 pixels share one label ("fp32, onnx_fp32"). Each label takes the first
    of `LABEL_OFFSETS` whose box stays inside the axes and clear of the points and the labels
    placed so far (the first offset when none is clear). Call it once the scales, limits and
    title are set: it lays the figure out to measure the text.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    drawn = np.isfinite(xs) & np.isfinite(ys)  # a missing figure has no point to name
    xs, ys, names = xs[drawn], ys[drawn], [n for n, d in zip(names, drawn, strict=True) if d]
    pixels = ax.transData.transform(np.column_stack([xs, ys]))
    groups: list[list[int]] = []
    for i, p in enumerate(pixels):
        near = next((g for g in groups if np.hypot(*(pixels[g[0]] - p)) < 10), None)
        if near is None:
            groups.append([i])
        else:
            near.append(i)
    frame = ax.get_window_extent(renderer)
    taken = [Bbox.from_extents(x - 5, y - 5, x + 5, y + 5) for x, y in pixels]
    for group in groups:
        text, anchor = ", ".join(names[i] for i in group), (xs[group[0]], ys[group[0]])
        for dx, dy in LABEL_OFFSETS:
            label = ax.annotate(text, anchor, xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                                ha="left" if dx > 0 else "right" if dx < 0 else "center", va="center",
                                arrowprops=LEADER)
            box = _text_box(label, renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                break
            label.remove()
        else:  # crowded: the nearest place, overlap and all
            label = ax.annotate(text, anchor, xytext=LABEL_OFFSETS[0], textcoords="offset points",
                                fontsize=fontsize, ha="left", va="center", arrowprops=LEADER)
            box = _text_box(label, renderer)
        taken.append(box)


def _text_box(label, renderer):  # noqa: ANN001, ANN202 - a matplotlib Annotation and renderer
    """The pixel box of an annotation's text, without its leader line."""
    from matplotlib.text import Text

    label.update_positions(renderer)
    return Text.get_window_extent(label, renderer)
