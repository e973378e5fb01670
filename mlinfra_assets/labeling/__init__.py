"""Labeling stage: labeling functions, the label model, active learning, annotations.

`build_stage(spec)` returns its assets (label_matrix, weak_labels, lf_summary,
annotation_queue, annotations, gold_labels,
label_review) and the annotation-file sensor.
"""

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage


def build_stage(spec: DatasetSpec) -> Stage:
    from mlinfra_assets.labeling.assets.gold import build_gold_labels, build_label_review
    from mlinfra_assets.labeling.assets.human import build_annotation_queue, build_annotations
    from mlinfra_assets.labeling.assets.weak import build_label_matrix_asset, build_lf_summary
    from mlinfra_assets.labeling.assets.weak_labels import build_weak_labels
    from mlinfra_assets.labeling.sensors import build_annotation_sensor

    return Stage(
        assets=[
            build_label_matrix_asset(spec),
            build_weak_labels(spec),
            build_lf_summary(spec),
            build_annotation_queue(spec),
            build_annotations(spec),
            build_gold_labels(spec),
            build_label_review(spec),
        ],
        sensors=[build_annotation_sensor()],
    )
