"""The one Definitions object: every stage's assets, checks, sensors and schedules,
the jobs, the resources, and the cross-cutting pieces (executor, pools)."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from mlinfra_assets import (
    analytics,
    edge,
    keys,
    labeling,
    monitoring,
    synthetic,
    training,
    warehouse,
)
from mlinfra_assets.executor import executor_for
from mlinfra_assets.resources import default_resources, engine_resources
from mlinfra_assets.spec import DatasetSpec, current_spec
from mlinfra_assets.validate import check_spec

STAGES = (warehouse, labeling, synthetic, training, edge, monitoring, analytics)


def build_jobs(spec: DatasetSpec) -> list[dg.UnresolvedAssetJobDefinition]:
    partitioned = dg.AssetSelection.assets(
        keys.raw_key(spec), keys.QUARANTINE, keys.PREDICTIONS, keys.SHADOW, keys.DRIFT_REPORT, keys.PERFORMANCE
    )
    retrain = dg.AssetSelection.groups("labeling", "synthetic", "training", "edge")
    return [
        dg.define_asset_job(
            keys.FULL_JOB,
            selection=dg.AssetSelection.all(),
            description="Everything, from the source to the analytics views (make run).",
        ),
        dg.define_asset_job(
            keys.DAILY_JOB,
            selection=partitioned,
            description="Ingest and score one day: raw rows, predictions (and the shadow's), drift, performance.",
        ),
        dg.define_asset_job(
            keys.RETRAIN_JOB,
            selection=retrain - dg.AssetSelection.assets(keys.ANNOTATIONS, keys.GOLD_LABELS),
            description="Weak labels, queue, synthetic rows, training, gate, edge variants.",
        ),
        dg.define_asset_job(
            keys.EDGE_JOB,
            selection=dg.AssetSelection.groups("edge"),
            description="The champion's edge variants and their report (edge_follows_champion starts it "
            "when the champion moves outside retrain_job).",
        ),
        dg.define_asset_job(
            keys.ANNOTATIONS_JOB,
            selection=dg.AssetSelection.assets(keys.ANNOTATIONS, keys.GOLD_LABELS),
            description="Land dropped annotation files into labeling.annotations.",
        ),
    ]


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions (e.g. the analytics views refresh when a
    table they read changes); on by default, unlike Dagster's implicit one."""
    return dg.AutomationConditionSensorDefinition(
        "automation_conditions",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
    )


def build_definitions(spec: DatasetSpec, resources: dict[str, Any] | None = None) -> dg.Definitions:
    """Build the code location for one dataset spec."""
    resources = {**engine_resources(spec), **(resources or default_resources())}
    check_spec(spec, resources["warehouse"].path)
    stages = [stage.build_stage(spec) for stage in STAGES]
    jobs = build_jobs(spec)
    daily = next(j for j in jobs if j.name == keys.DAILY_JOB)
    schedules = [  # without a timestamp there is no calendar: the new-files sensor ingests batches
        dg.build_schedule_from_partitioned_job(
            daily,
            name="daily_ingest_and_score",
            description=f"Each {spec.source.cadence} partition: ingest it, score it with the champion, "
            "check drift.",
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
    ] if spec.has_timestamp else []
    return dg.Definitions(
        assets=[a for s in stages for a in s.assets],
        asset_checks=[c for s in stages for c in s.checks],
        sensors=[x for s in stages for x in s.sensors] + [automation_sensor()],
        schedules=schedules + [x for s in stages for x in s.schedules],
        jobs=jobs,
        resources=resources,
        executor=executor_for(),  # MLINFRA_EXECUTOR: multiprocess (default), docker or k8s
    )


os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SPEC = current_spec()
defs = build_definitions(SPEC)
