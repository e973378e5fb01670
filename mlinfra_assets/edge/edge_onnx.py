"""The edge deliverable: one ONNX file from raw columns to probabilities, preprocessing inside.

Inputs are the raw feature columns, one 1-D tensor each, named after the column: numerics
as float32 (NaN = missing, imputed with the training mean in the graph), categoricals as
strings (mapped to the training vocabulary's codes by an `ai.onnx.ml.LabelEncoder`; unseen
or missing values get the unknown code 0). Standardization is the network's own first op.
The file's metadata names the classes, the positive class and the columns, so a scorer
needs nothing but numpy and onnxruntime (`standalone/score.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mlinfra_assets.training.model import UNKNOWN, Preprocessor

ML_DOMAIN = "ai.onnx.ml"
PREFIX = "model/"


def raw_inputs(df: pd.DataFrame, pre: Preprocessor) -> dict[str, np.ndarray]:
    """The deliverable's inputs from raw rows: float32 numerics, string categoricals."""
    out = {c: df[c].to_numpy(dtype="float64", na_value=np.nan).astype("float32") for c in pre.numeric}
    out |= {c: df[c].astype(str).to_numpy(dtype=object) for c in pre.categorical}
    return out


def _preprocess_graph(pre: Preprocessor, opset: int, ir_version: int):  # noqa: ANN202 - an onnx.ModelProto
    from onnx import TensorProto, helper

    if not pre.numeric and not pre.categorical:
        raise ValueError("the preprocessor has no feature columns: nothing to feed the network")
    inputs, nodes, inits = [], [], []
    for c in pre.numeric:
        inputs.append(helper.make_tensor_value_info(c, TensorProto.FLOAT, ["batch"]))
    for c in pre.categorical:
        inputs.append(helper.make_tensor_value_info(c, TensorProto.STRING, ["batch"]))
    inits.append(helper.make_tensor("pre/axis1", TensorProto.INT64, [1], [1]))
    first = (pre.numeric or pre.categorical)[0]

    def stack(columns: list[str], out: str, dtype: int) -> None:
        if not columns:  # an empty [batch, 0] tensor
            nodes.append(helper.make_node("Shape", [first], [f"pre/{out}_b"]))
            inits.append(helper.make_tensor(f"pre/{out}_zero", TensorProto.INT64, [1], [0]))
            nodes.append(helper.make_node("Concat", [f"pre/{out}_b", f"pre/{out}_zero"], [f"pre/{out}_shape"], axis=0))
            nodes.append(helper.make_node("ConstantOfShape", [f"pre/{out}_shape"], [out],
                                          value=helper.make_tensor("v", dtype, [1], [0])))
            return
        cols = [f"pre/{c}_2d" for c in columns]
        nodes.extend(helper.make_node("Unsqueeze", [src, "pre/axis1"], [dst])
                     for src, dst in zip([f"pre/{c}_in" for c in columns], cols, strict=True))
        nodes.append(helper.make_node("Concat", cols, [out], axis=1))

    for c in pre.numeric:
        nodes.append(helper.make_node("Identity", [c], [f"pre/{c}_in"]))
    stack(pre.numeric, "pre/numeric_raw", TensorProto.FLOAT)
    if pre.numeric:
        inits.append(helper.make_tensor("pre/means", TensorProto.FLOAT, [len(pre.means)], pre.means))
        nodes.append(helper.make_node("IsNaN", ["pre/numeric_raw"], ["pre/missing"]))
        nodes.append(helper.make_node("Where", ["pre/missing", "pre/means", "pre/numeric_raw"], ["numeric"]))
    else:
        nodes.append(helper.make_node("Identity", ["pre/numeric_raw"], ["numeric"]))
    for c in pre.categorical:
        vocab = pre.vocab[c]
        nodes.append(helper.make_node(
            "LabelEncoder", [c], [f"pre/{c}_in"], domain=ML_DOMAIN, keys_strings=list(vocab),
            values_int64s=list(range(1, len(vocab) + 1)), default_int64=UNKNOWN,
        ))
    stack(pre.categorical, "categorical", TensorProto.INT64)
    outputs = [helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["batch", len(pre.numeric)]),
               helper.make_tensor_value_info("categorical", TensorProto.INT64, ["batch", len(pre.categorical)])]
    graph = helper.make_graph(nodes, "preprocess", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(ML_DOMAIN, 3)],
                             ir_version=ir_version)


def build_edge_onnx(network: Path, pre: Preprocessor, classes: list[str], positive: str | None,
                    path: Path, version: str = "") -> None:
    """Write `path`: the preprocessing graph merged in front of the exported `network` file.

    Parameters
    ----------
    network : Path
        ONNX file with inputs `numeric`, `categorical` and output `probabilities`.
    pre : Preprocessor
        Column order, means (imputation) and vocabularies (codes) of the training.
    classes, positive : list of str, str or None
        Class names in output order, and the positive class; stored as metadata.
    path : Path
        The deliverable to write.
    version : str
        Model version, stored as metadata.
    """
    import onnx
    from onnx import compose

    core = onnx.load(str(network))
    opset = next(o.version for o in core.opset_import if o.domain in ("", "ai.onnx"))
    core = compose.add_prefix(core, PREFIX)
    front = _preprocess_graph(pre, opset, core.ir_version)
    merged = compose.merge_models(
        front, core, io_map=[("numeric", PREFIX + "numeric"), ("categorical", PREFIX + "categorical")],
        producer_name="mlinfra", doc_string="raw feature columns -> class probabilities (preprocessing inside)",
    )
    merged.graph.output[0].name = "probabilities"
    for node in merged.graph.node:  # rename the network's output back to the public name
        node.output[:] = ["probabilities" if o == PREFIX + "probabilities" else o for o in node.output]
    meta = {"classes": json.dumps(classes), "positive_class": positive or "", "model_version": version,
            "numeric": json.dumps(pre.numeric), "categorical": json.dumps(pre.categorical)}
    onnx.helper.set_model_props(merged, meta)
    onnx.checker.check_model(merged)
    onnx.save(merged, str(path))
