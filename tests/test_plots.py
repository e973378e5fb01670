"""Plots: the edge trade-off labels (each point named once, none over another), the chosen epoch on the loss plot."""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mlinfra_assets.edge import figures  # noqa: E402
from mlinfra_assets.plots import _text_box, png_markdown  # noqa: E402

# the demo's compression report: three variants of one size and F1, two more a pixel apart
REPORT = pd.DataFrame({
    "variant": ["fp32", "dynamic_int8", "int8_weight_only", "pruned_50", "pruned_80", "onnx_fp32", "onnx_int8",
                "edge_onnx", "broken"],
    "status": ["ok"] * 8 + ["failed"],
    "size_bytes": [291605, 82327, 82919, 292005, 292005, 287841, 78696, 289670, None],
    "latency_b1024_p50_ms": [1.97, 1.27, 2.6, 2.1, 2.3, 2.04, 0.86, 2.55, None],
    "metric_value": [0.4784, 0.4764, 0.4795, 0.4542, 0.4308, 0.4784, 0.4750, 0.4784, None],
    "size_ratio": [1.0, 3.542, 3.517, 0.9986, 0.9986, 1.013, 3.705, 1.007, None],
    "speedup_b1024": [1.0, 1.531, 0.7667, 0.9243, 0.8639, 0.9608, 2.250, 0.7837, None],
    "deployable": [True, True, True, False, False, True, True, True, False],
})


@pytest.mark.parametrize("draw", [
    figures.tradeoff(REPORT, "size_bytes", "file size (bytes, log)"),
    figures.tradeoff(REPORT, "latency_b1024_p50_ms", "p50 latency (ms, log)"),
    figures.gains(REPORT),
], ids=["size", "latency", "gains"])
def test_each_variant_is_named_once_and_no_labels_overlap(draw):
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=90)
    try:
        ax.set_title("trade-off")
        draw(ax)
        fig.tight_layout()  # what png_markdown does last: the labels must stay where they were measured
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        labels = [t for t in ax.texts if t.get_text()]
        names = [n for t in labels for n in t.get_text().split(", ")]
        assert sorted(names) == sorted(REPORT["variant"][REPORT["status"] == "ok"])
        boxes = [_text_box(t, renderer) for t in labels]
        frame = ax.get_window_extent(renderer)
        assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
        pairs = itertools.combinations(zip(labels, boxes, strict=True), 2)
        assert not [(a.get_text(), b.get_text()) for (a, ba), (b, bb) in pairs if ba.overlaps(bb)]
    finally:
        plt.close(fig)


def test_a_plot_without_judged_variants_says_why():
    unjudged = REPORT.assign(metric_value=None)
    assert "data:image/png;base64" in png_markdown(figures.tradeoff(unjudged, "size_bytes", "size"), "Size").value


def _history(select, loss):
    from mlinfra_assets.training.trainer import EpochStats

    return [EpochStats(i + 1, 0.5, v, 0.3, s, 1.0, 0.3, s) for i, (s, v) in enumerate(zip(select, loss, strict=True))]


@pytest.mark.parametrize(("select", "loss", "on", "chosen"), [
    ([0.46, 0.48, 0.56, 0.58, 0.44], [0.69, 0.77, 0.69, 0.61, 0.60], "pr_auc", 4),  # the peak, not the lowest loss
    ([0.5, 0.6, 0.6], [0.7, 0.5, 0.4], "pr_auc", 3),  # a tie goes to the lower loss
    ([0.5, 0.6, 0.6], [0.7, 0.4, 0.4], "pr_auc", 2),  # ... then to the earlier epoch
    ([float("nan"), 0.1, float("nan")], [0.1, 0.9, 0.05], "macro_f1", 2),  # undefined ranks below any figure
    ([0.5, 0.6, 0.7], [0.7, 0.4, 0.6], "loss", 2),
])
def test_the_loss_plot_marks_the_epoch_the_figure_chose(select, loss, on, chosen):
    from mlinfra_assets.training.figures import chosen_epoch, draw_loss

    history = _history(select, loss)
    plot = draw_loss(history, on, "f1")
    assert chosen_epoch(history, on) == plot.best_epoch == chosen
    fig, ax = plt.subplots()
    try:
        plot(ax)
        marks = [line for line in ax.get_lines() if line.get_label() == f"chosen epoch {chosen}"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [chosen, chosen]
        assert ax.get_legend().get_bbox_to_anchor().y0 < ax.get_window_extent().y0  # under the axes
    finally:
        plt.close(fig)
    assert draw_loss(history, on, "f1", best_epoch=1).best_epoch == 1  # the trainer's own choice wins
    assert draw_loss([], on, "f1").best_epoch == 0
