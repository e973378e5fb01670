"""The registered model's MLflow pyfunc, logged as code (MLflow "models from code"): raw
feature columns in; one probability column per class (`prob_<class>`) and the predicted
class name (`predicted_class`) out.

MLflow runs this file when the model loads; it imports the network from the copy of
`tabular_net.py` logged with the model (`code_paths`), so a registered version loads with
`mlflow.pyfunc.load_model` where only its requirements are installed (mlflow-skinny, torch,
numpy, pandas) and mlinfra is not, and each version scores with the code it was logged with.
Nothing here imports `mlinfra_assets`; the project never imports this file (it calls
`mlflow.models.set_model` when run).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


def _network_module():  # noqa: ANN202 - the tabular_net module
    """The model's own copy of tabular_net.py (its `code/` folder), or, while the project logs
    the model and MLflow runs this file to check it, the file beside this one."""
    here = Path(__file__).resolve().parent
    path = next(p for p in (here / "code" / "tabular_net.py", here / "tabular_net.py") if p.exists())
    name = "tabular_net_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]  # one per model folder
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


tabular_net = _network_module()
ARTIFACT = "scoring_model"  # the artifact key of the saved model folder


class TabularPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        folder = Path(context.artifacts[ARTIFACT])
        self.net, self.pre, self.classes = tabular_net.load_net(folder)
        outputs = json.loads((folder / tabular_net.OUTPUTS).read_text())
        self.columns, self.predicted = outputs["probabilities"], outputs["predicted"]

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        probs = tabular_net.probabilities(self.net, self.pre, model_input, len(self.classes)).astype("float64")
        out = pd.DataFrame(probs, columns=self.columns, index=model_input.index)
        out[self.predicted] = np.asarray(self.classes, dtype=object)[probs.argmax(axis=1)] if len(probs) else []
        return out


mlflow.models.set_model(TabularPyfunc())
