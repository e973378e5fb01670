"""Plots of the training stage: drawn on a matplotlib axis, shown in Dagster and MLflow."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mlinfra_assets.training.metrics import calibration_curve

if TYPE_CHECKING:  # the trainer imports torch (~2.5 s): loading the code location must not
    from mlinfra_assets.training.trainer import EpochStats

FIGURE_NAMES = {"f1": "F1", "macro_f1": "macro-F1", "accuracy": "accuracy", "pr_auc": "PR-AUC", "loss": "loss"}


def chosen_epoch(history: list[EpochStats], selected_on: str) -> int:
    """The epoch the trainer keeps: the best validation figure `selected_on` (an undefined one
    ranks below any other), ties by the lower validation loss, the earlier epoch last; by
    loss alone when `selected_on` is `loss`. 0 when no epoch ran."""
    if not history:
        return 0
    if selected_on == "loss":
        key = [(-h.val_loss, 0.0) for h in history]
    else:
        key = [(-1.0 if np.isnan(h.val_select) else h.val_select, -h.val_loss) for h in history]
    return history[max(range(len(history)), key=lambda i: (key[i], -i))].epoch


def draw_loss(history: list[EpochStats], selected_on: str = "pr_auc", metric: str = "f1",
              best_epoch: int | None = None) -> Callable[[object], None]:
    """Train and validation loss per epoch; on a second axis the validation figure that chose
    the epoch (`selected_on`), and the spec's `metric` when that is another figure; the chosen
    epoch (`best_epoch`, else `chosen_epoch`) marked by a vertical line."""
    lines = [] if selected_on == "loss" else [(f"validation {FIGURE_NAMES.get(selected_on, selected_on)} "
                                               "(chooses the epoch)", [h.val_select for h in history])]
    if metric != selected_on:
        lines.append((f"validation {FIGURE_NAMES.get(metric, metric)}", [h.val_metric for h in history]))
    best = chosen_epoch(history, selected_on) if best_epoch is None else best_epoch

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib Axes
        epochs = [h.epoch for h in history]
        ax.plot(epochs, [h.train_loss for h in history], marker="o", label="train loss")
        ax.plot(epochs, [h.val_loss for h in history], marker="o", label="validation loss"
                + (" (chooses the epoch)" if selected_on == "loss" else ""))
        if best:
            ax.axvline(best, color="black", lw=1, ls="-.", label=f"chosen epoch {best}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("weighted soft cross-entropy")
        right = ax.twinx()
        for (label, values), style in zip(lines, ("--", ":"), strict=False):
            right.plot(epochs, values, color="tab:green", ls=style, marker="." if style == "--" else None,
                       label=label)
        right.set_ylabel("validation figure")
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        # below the axes: inside, the legend hid the lines it names
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7,
                  frameon=False)

    draw.lines = [label for label, _ in lines]  # what the second axis shows (tests read it)
    draw.best_epoch = best
    return draw


def draw_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Callable[[object], None]:
    """Precision-recall curves: {name: (is_positive, score)}."""
    from sklearn.metrics import precision_recall_curve

    def draw(ax) -> None:  # noqa: ANN001
        for name, (truth, score) in curves.items():
            if truth.any():
                precision, recall, _ = precision_recall_curve(truth, score)
                ax.plot(recall, precision, label=name)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)

    return draw


def draw_calibration(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Callable[[object], None]:
    """Reliability diagram (top-label): {name: (labels, probs)}."""

    def draw(ax) -> None:  # noqa: ANN001
        ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect")
        for name, (labels, probs) in curves.items():
            conf, acc = calibration_curve(labels, probs)
            ax.plot(conf, acc, marker="o", label=name)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7)

    return draw


def draw_confusion(labels: np.ndarray, pred: np.ndarray, classes: list[str]) -> Callable[[object], None]:
    """Confusion matrix (rows: true class, columns: predicted class), counts in the cells."""
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (labels.astype(int), pred.astype(int)), 1)

    def draw(ax) -> None:  # noqa: ANN001
        shade = np.log1p(counts)
        ax.imshow(shade, cmap="Blues")
        for i in range(k):
            for j in range(k):  # white on the dark cells, black on the light ones
                ax.text(j, i, f"{counts[i, j]:,}", ha="center", va="center", fontsize=9,
                        color="white" if shade[i, j] > 0.6 * shade.max() else "black")
        ax.set_xticks(range(k), classes)
        ax.set_yticks(range(k), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")

    return draw


def figure(draw: Callable[[object], None], title: str, size: tuple[float, float] = (6, 3.5)):  # noqa: ANN201
    """A matplotlib Figure for `mlflow.log_figure` (close it after logging)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=90)
    ax.set_title(title)
    draw(ax)
    fig.tight_layout()
    return fig
