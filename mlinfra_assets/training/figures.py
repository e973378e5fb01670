"""Plots of the training stage: drawn on a matplotlib axis, shown in Dagster and MLflow."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlinfra_assets.training.metrics import calibration_curve
from mlinfra_assets.training.trainer import EpochStats


def draw_loss(history: list[EpochStats]) -> Callable[[object], None]:
    """Train and validation loss per epoch, validation F1 on a second axis."""

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib Axes
        epochs = [h.epoch for h in history]
        ax.plot(epochs, [h.train_loss for h in history], marker="o", label="train loss")
        ax.plot(epochs, [h.val_loss for h in history], marker="o", label="validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("weighted soft cross-entropy")
        f1 = ax.twinx()
        f1.plot(epochs, [h.val_f1 for h in history], color="tab:green", ls="--", label="validation F1")
        f1.set_ylabel("validation F1")
        handles = ax.get_legend_handles_labels()[0] + f1.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper center", fontsize=7)

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
        ax.imshow(np.log1p(counts), cmap="Blues")
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=9)
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
    draw(ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig
