"""Trade-off plots of the compression report (draw callbacks for `plots.png_markdown`)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

SIZE_TARGET = 3.5  # dynamic int8 vs fp32, issue target
SPEED_TARGET = 1.5


def _points(report: pd.DataFrame) -> pd.DataFrame:
    return report[report["status"] == "ok"].reset_index(drop=True)


def tradeoff(report: pd.DataFrame, x: str, xlabel: str, metric: str = "F1") -> Callable[[object], None]:
    """The spec's metric (`metric_value`, named `metric`) against a cost column (log scale):
    green deployable, red not; squares are ONNX files."""

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        points = _points(report)
        points = points[points["metric_value"].notna()].reset_index(drop=True)
        if points.empty:  # no labelled holdout rows: nothing to plot the cost against
            ax.text(0.5, 0.5, "not judged: no labelled holdout rows", ha="center", va="center")
            ax.set_axis_off()
            return
        for i, row in points.iterrows():
            onnx = "onnx" in row["variant"]
            ax.scatter(row[x], row["metric_value"], s=60, marker="s" if onnx else "o",
                       color="tab:green" if row["deployable"] else "tab:red")
            ax.annotate(row["variant"], (row[x], row["metric_value"]), textcoords="offset points",
                        xytext=(5, 5 - 14 * (i % 2)), fontsize=8)  # alternate so equal points stay readable
        ax.set_xscale("log")
        ax.margins(x=0.25, y=0.15)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"holdout {metric} (green: deployable)")
        ax.grid(alpha=0.3, which="both")

    return draw


def gains(report: pd.DataFrame) -> Callable[[object], None]:
    """Size reduction against speed-up at batch 1024 (vs fp32), with the issue's targets dashed."""

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        points = _points(report)
        for i, row in points.iterrows():
            ax.scatter(row["size_ratio"], row["speedup_b1024"], s=60,
                       color="tab:green" if row["deployable"] else "tab:red")
            ax.annotate(row["variant"], (row["size_ratio"], row["speedup_b1024"]), textcoords="offset points",
                        xytext=(5, 5 - 14 * (i % 2)), fontsize=8)
        ax.axvline(SIZE_TARGET, ls="--", color="grey", lw=1)
        ax.axhline(SPEED_TARGET, ls="--", color="grey", lw=1)
        ax.axhline(1.0, color="black", lw=0.5)
        ax.margins(x=0.25, y=0.15)
        ax.set_xlabel("fp32 file size / variant file size")
        ax.set_ylabel("speed-up vs fp32, batch 1024, 1 thread")
        ax.grid(alpha=0.3)

    return draw
