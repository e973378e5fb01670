"""Child process for the crash campaign: materialize one asset of a spec (json) in a data folder."""

import sys
from pathlib import Path

import dagster as dg

from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import DatasetSpec

if __name__ == "__main__":
    spec_json, data_dir, key = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = DatasetSpec.model_validate_json(Path(spec_json).read_text())
    result = run_assets(
        spec,
        default_resources(data_dir),
        selection=dg.AssetSelection.assets(
            dg.AssetKey.from_user_string(key)
        ).required_multi_asset_neighbors(),
        raise_on_error=False,
    )
    sys.exit(0 if result.success else 1)
