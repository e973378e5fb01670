"""The `raw.gold` asset: the spec's ground-truth labels, one row per id (see gold.py)."""

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.plots import df_markdown
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures
from mlinfra_assets.warehouse.assets import RAW_GROUP
from mlinfra_assets.warehouse.gold import land_gold


def gold_deps(spec: DatasetSpec) -> list[dg.AssetKey]:
    """The asset the labels are read from: the source itself, or the gold table (none for a file)."""
    if spec.gold is None or spec.gold.path:
        return []
    if spec.gold.table:
        return [dg.AssetKey(spec.gold.table.split("."))]
    return [keys.source_key(spec)]


def build_gold(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.GOLD,
        deps=gold_deps(spec),
        group_name=RAW_GROUP,
        kinds={"duckdb"},
        pool=keys.WAREHOUSE_POOL,
        description="Ground-truth labels of the spec's `gold:` section (the source's target column, "
        "a file or a table): row_id, label (class index) and class name. Evaluation, the label "
        "model's choice and the simulated annotator read them; never a training feature.",
    )
    @round_figures
    def gold(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            result = land_gold(con, spec)
        context.log.info(f"gold: {result.rows} labels from {result.where}")
        counts = result.per_class.set_index("class")["rows"]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                "from": result.where,
                "source_rows": result.source_rows,
                "labelled_share_of_source": round(result.rows / result.source_rows, 4)
                if result.source_rows else "no source rows",
                "majority_class": str(counts.idxmax()),
                "majority_share": round(float(counts.max() / max(counts.sum(), 1)), 4),
                "per_class": df_markdown(result.per_class),
            }
        )

    return gold
