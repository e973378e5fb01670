"""The fp32 ONNX file of a TabularMLP is written op by op (`onnx_files.mlp_graph`): the same
graph and the same probabilities as torch's dynamo exporter, whatever the columns."""

import numpy as np
import onnx
import pytest
import torch

from mlinfra_assets.edge import onnx_files
from mlinfra_assets.training.tabular_net import Preprocessor, TabularMLP

CASES = {
    "numeric and categorical": Preprocessor(["a", "b", "c"], ["k", "j"], [1.0, -2.0, 0.5], [2.0, 0.5, 1.0],
                                            {"k": ["x", "y", "z"], "j": ["p", "q"]}),
    "numeric only": Preprocessor(["a", "b"], [], [0.0, 3.0], [1.0, 2.0], {}),
    "categorical only": Preprocessor([], ["k"], [], [], {"k": ["x", "y", "z", "w"]}),
}


def _ops(path) -> list[str]:  # noqa: ANN001
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("classes", [2, 3])
def test_the_written_graph_is_the_exporters_graph_and_scores_alike(case, classes, tmp_path):
    pre = CASES[case]
    torch.manual_seed(classes)
    net = TabularMLP(pre, classes, [16, 8]).eval()
    onnx_files.export_onnx(net, pre, tmp_path / "written.onnx")
    onnx_files.export_with_torch(net, pre, tmp_path / "exported.onnx")
    assert onnx.load(str(tmp_path / "written.onnx")).producer_name == "mlinfra"  # written, not exported
    assert _ops(tmp_path / "written.onnx") == _ops(tmp_path / "exported.onnx")
    num, cat = onnx_files.sample_inputs(pre, 500, seed=classes)
    feeds = {"numeric": num, "categorical": cat}
    written, exported = (onnx_files.onnx_session(str(tmp_path / f)).run(None, feeds)[0]
                         for f in ("written.onnx", "exported.onnx"))
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(num), torch.from_numpy(cat)), dim=1).numpy()
    assert written.shape == (500, classes)
    np.testing.assert_allclose(written, exported, atol=1e-6)
    np.testing.assert_allclose(written, expected, atol=1e-6)
    elements, _ = onnx_files.onnx_stats(tmp_path / "written.onnx")
    assert elements == onnx_files.onnx_stats(tmp_path / "exported.onnx")[0]  # the report's size figure


def test_another_module_goes_through_the_exporter(tmp_path):
    pre = CASES["numeric only"]

    class Other(torch.nn.Module):
        def forward(self, numeric, categorical):  # noqa: ANN001, ANN201
            return torch.stack([numeric.sum(1), -numeric.sum(1)], dim=1)

    assert onnx_files.mlp_graph(Other(), pre) is None
    net = TabularMLP(pre, 2, [4])
    net.mlp[1] = torch.nn.Tanh()  # a layer the writer does not know
    assert onnx_files.mlp_graph(net, pre) is None
    onnx_files.export_onnx(net.eval(), pre, tmp_path / "tanh.onnx")
    assert "Tanh" in _ops(tmp_path / "tanh.onnx")
