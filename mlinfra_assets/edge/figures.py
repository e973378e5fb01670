"""Trade-off plots of the compression report (draw callbacks for `plots.png_markdown`)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from mlinfra_assets.plots import label_points

SIZE_GOAL = 3.5  # fp32 size / int8 size: what int8 weights give a dense MLP
SPEED_GOAL = 1.5  # speed-up at batch 1024, one CPU thread


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
        for _, row in points.iterrows():
            ax.scatter(row[x], row["metric_value"], s=60, marker="s" if "onnx" in row["variant"] else "o",
                       color="tab:green" if row["deployable"] else "tab:red")
        ax.set_xscale("log")
        ax.margins(x=0.35, y=0.2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"holdout {metric} (green: deployable)")
        ax.grid(alpha=0.3, which="both")
        label_points(ax, points[x], points["metric_value"], list(points["variant"]))

    return draw


def gains(report: pd.DataFrame) -> Callable[[object], None]:
    """Size reduction against speed-up at batch 1024 (vs fp32), the goals dashed."""

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        points = _points(report)
        for _, row in points.iterrows():
            ax.scatter(row["size_ratio"], row["speedup_b1024"], s=60,
                       color="tab:green" if row["deployable"] else "tab:red")
        ax.axvline(SIZE_GOAL, ls="--", color="grey", lw=1, label=f"{SIZE_GOAL:g}x smaller")
        ax.axhline(SPEED_GOAL, ls=":", color="grey", lw=1, label=f"{SPEED_GOAL:g}x faster")
        ax.axhline(1.0, color="black", lw=0.5)
        ax.margins(x=0.3, y=0.2)
        ax.set_xlabel("fp32 file size / variant file size")
        ax.set_ylabel("speed-up vs fp32, batch 1024, 1 thread")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        label_points(ax, points["size_ratio"], points["speedup_b1024"], list(points["variant"]))

    return draw
