"""The MLflow pyfunc of the edge deliverable (`edge_model.onnx`, preprocessing inside), logged as
code (MLflow "models from code"): raw feature columns in; one probability column per class
(`prob_<class>`) and the predicted class name (`predicted_class`) out, as the trained model's
pyfunc. Needs numpy, pandas and onnxruntime only: it imports nothing of mlinfra, and the project
never imports it (it calls `mlflow.models.set_model` when run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

ARTIFACT = "edge_model"  # a folder: edge_model.onnx and outputs.json


class EdgeOnnxPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        import onnxruntime as ort

        folder = Path(context.artifacts[ARTIFACT])
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / "edge_model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.classes = json.loads(self.session.get_modelmeta().custom_metadata_map["classes"])
        outputs = json.loads((folder / "outputs.json").read_text())
        self.columns, self.predicted = outputs["probabilities"], outputs["predicted"]

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        feeds = {}
        for node in self.session.get_inputs():  # numerics as float32 (NaN: imputed inside), categoricals as text
            values = model_input[node.name]
            feeds[node.name] = (values.astype(str).to_numpy(dtype=object) if node.type == "tensor(string)" else
                                values.to_numpy(dtype="float64", na_value=np.nan).astype("float32"))
        probs = self.session.run(None, feeds)[0].astype("float64")
        out = pd.DataFrame(probs, columns=self.columns, index=model_input.index)
        out[self.predicted] = np.asarray(self.classes, dtype=object)[probs.argmax(axis=1)] if len(probs) else []
        return out


mlflow.models.set_model(EdgeOnnxPyfunc())
