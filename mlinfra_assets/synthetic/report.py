"""The synthetic_quality asset's metadata and check result (ERROR severity, not blocking: a failed
gate withholds the synthetic rows from training), from a gate verdict."""

import dagster as dg
import pandas as pd

from mlinfra_assets.plots import df_markdown
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic import figures
from mlinfra_assets.synthetic.gates import WITHHELD, Sampled, Verdict


def _figures(verdict: Verdict) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    q, p, u = verdict.quality, verdict.privacy, verdict.utility
    if q is not None:
        out.update({
            "overall_quality": q.overall,
            "data_validity": q.validity,
            "column_shapes": q.property_score("quality", "Column Shapes"),
            "column_pair_trends": q.property_score("quality", "Column Pair Trends"),
            "data_structure": q.property_score("diagnostic", "Data Structure"),
        })
    if p is not None:
        out.update({
            "exact_matches": p.exact_matches,
            "exact_copy_share": p.exact_copy_share,
            "holdout_copy_share": p.holdout_copy_share,
            "dcr_ratio": p.dcr_ratio,
            "dcr_closer_than_holdout_share": p.closer_share,
            "dcr_synthetic_median": p.synthetic_dcr,
            "dcr_holdout_median": p.holdout_dcr,
            "dcr_overfitting_protection": p.overfitting_protection,
            "dcr_closer_to_training_share": p.closer_to_training,
            "dcr_baseline_protection": p.baseline_protection,
        })
    if u is not None:
        out.update({"tstr_f1": u.tstr_f1, "trtr_f1": u.trtr_f1, "tstr_trtr_ratio": u.tstr_ratio})
    if u is not None and u.model_f1_without is not None and u.model_f1_with is not None:
        out.update({
            "model_f1_without_synthetic": u.model_f1_without,
            "model_f1_with_synthetic": u.model_f1_with,
            "model_f1_gain": u.model_f1_with - u.model_f1_without,
        })
    return out


def report(context: dg.AssetExecutionContext, spec: DatasetSpec, verdict: Verdict, rows: int,
           sampled: Sampled, check_name: str) -> dg.MaterializeResult:
    """Metadata (figures as numbers, per-column table and plot, gate table, the class plan) and the
    check result."""
    s = spec.synthetic
    numbers = _figures(verdict)
    if verdict.problems:
        description = f"{WITHHELD}: " + "; ".join(verdict.problems)
    else:
        description = "; ".join(verdict.notes[:1]) or "quality and privacy gates met"
    (context.log.warning if verdict.problems else context.log.info)(f"synthetic gates: {description}")
    for note in verdict.notes:
        context.log.warning(note)
    not_measured = {
        "quality": "not measured: " + ("; ".join(p for p in verdict.problems if p.startswith("quality"))
                                       or "no candidate rows"),
        "privacy": "not measured: " + ("; ".join(p for p in verdict.problems if p.startswith("privacy"))
                                       or "no candidate rows"),
        "utility": next((n for n in verdict.notes if n.startswith("utility")), "not measured: no candidate rows"),
    }
    missing = {
        **({} if verdict.quality else {"overall_quality": not_measured["quality"]}),
        **({} if verdict.privacy else {"dcr_ratio": not_measured["privacy"]}),
        **({} if verdict.utility else {"utility": not_measured["utility"]}),
        **({"model_f1_gain": verdict.utility.model_note} if verdict.utility and verdict.utility.model_note else {}),
    }
    gate_rows = [
        ("overall quality", numbers.get("overall_quality"), f">= {s.quality_threshold}"),
        ("diagnostic validity", numbers.get("data_validity"), ">= 1.0"),
        ("exact copies of real rows", numbers.get("exact_matches"), "0"),
        ("exact-copy share of fit rows (reported, copies dropped)", numbers.get("exact_copy_share"), "-"),
        ("holdout rows equal to a fit row (baseline)", numbers.get("holdout_copy_share"), "-"),
        ("DCR ratio (synthetic / holdout medians, floored)", numbers.get("dcr_ratio"), f">= {s.privacy.min_dcr_ratio}"),
        ("P(synthetic closer than holdout) (reported)", numbers.get("dcr_closer_than_holdout_share"), "0.5 = as real"),
        (f"TSTR / TRTR {spec.metric} (reported)", numbers.get("tstr_trtr_ratio"), "-"),
        (f"model {spec.metric} gain from synthetic (reported)", numbers.get("model_f1_gain"), "-"),
    ]
    table = pd.DataFrame(gate_rows, columns=["figure", "value", "gate"])
    plan = sampled.plan
    extra = {}
    if verdict.quality is not None:
        extra = {
            "per_column": df_markdown(verdict.quality.per_column),
            "per_column_plot": figures.column_scores(verdict.quality.per_column, s.quality_threshold),
        }
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "synthetic_rows_compared": verdict.compared["synthetic"],
            "real_rows_compared": verdict.compared["real"],
            "holdout_rows_compared": verdict.compared["holdout"],
            "sampled_rows": sampled.sampled,
            "dropped_exact_copies": sampled.dropped,
            "passed": verdict.passed,
            "withheld": not verdict.passed,
            "withheld_reason": description if verdict.problems else "not withheld",
            "sampled_classes": ", ".join(plan.sampled) or "none",
            "skipped_classes": ", ".join(plan.skipped) or "none",
            "class_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in plan.warnings) or "none"),
            "class_plan": df_markdown(plan.table),
            **missing,
            "utility_metric": spec.metric,  # the tstr_f1 / model_f1_* figures are on this metric
            **({"model_f1_rows": verdict.utility.model_rows} if verdict.utility and verdict.utility.model_rows else {}),
            "quality_threshold": s.quality_threshold,
            "min_dcr_ratio": s.privacy.min_dcr_ratio,
            **{f"{gate}_seconds": t for gate, t in verdict.seconds.items()},
            **numbers,
            "gates": df_markdown(table),
            **extra,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=check_name,
                passed=verdict.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=description,
                metadata=numbers,
            )
        ],
    )
