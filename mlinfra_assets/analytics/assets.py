"""Analytics assets: the `analytics.*` views analysts query with plain SQL."""

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.analytics.views import create, views_for
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures

# Declarative automation: a view is re-created once any table it reads was updated (so that
# table exists), unless it is being created already. Simpler than a job per upstream stage.
REFRESH = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.in_progress()
).with_label("refresh after an input changed")


def build_views(spec: DatasetSpec) -> dg.AssetsDefinition:
    views = {view.key: view for view in views_for(spec)}

    @dg.multi_asset(
        name="analytics_views",
        specs=[
            dg.AssetSpec(
                view.key,
                deps=list(view.deps),
                group_name="analytics",
                kinds={"duckdb"},
                description=f"{view.description}\n\nExample: `{view.example()}`",
                skippable=True,
                automation_condition=REFRESH,
            )
            for view in views.values()
        ],
        can_subset=True,
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def analytics_views(context: dg.AssetExecutionContext, warehouse: Warehouse):
        """Create or replace the selected views (they read the tables live: no copy)."""
        with warehouse.connect() as con:
            for key in sorted(context.selected_asset_keys):
                view = views[key]
                rows = create(con, spec, view)
                columns = [r[0] for r in con.execute(f"DESCRIBE analytics.{view.name}").fetchall()]
                yield dg.MaterializeResult(
                    asset_key=key,
                    metadata={
                        "dagster/row_count": rows,
                        "columns": ", ".join(columns),
                        "example_query": dg.MetadataValue.md(f"```sql\n{view.example()}\n```"),
                    },
                )

    return analytics_views
