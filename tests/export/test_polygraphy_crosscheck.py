"""Cross-check against Polygraphy: its ONNX Runtime runner gives our runner's outputs, and its
comparator measures the same max absolute error between PyTorch and the artefact as ours."""
from pathlib import Path

import numpy as np
import pytest

polygraphy = pytest.importorskip("polygraphy")
from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx  # noqa: E402
from polygraphy.comparator import Comparator, CompareFunc, RunResults  # noqa: E402
from polygraphy.comparator.struct import IterationResult  # noqa: E402

from cat_deploy import load_model, save_checkpoint  # noqa: E402
from cat_deploy.exporter import ExportOptions, run_export  # noqa: E402
from cat_deploy.models import create_model  # noqa: E402
from cat_deploy.runtime.runners import OnnxRuntimeRunner, TorchRunner  # noqa: E402
from cat_deploy.validate.parity import TOLERANCES, compare_outputs  # noqa: E402

ROOT = Path(__file__).parents[2]


def test_polygraphy_agrees(tmp_path):
    ckpt = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"
    if not ckpt.is_file():
        ckpt = tmp_path / "m.pth"
        save_checkpoint(create_model("retinanet_tiny", num_classes=6), ckpt)
    run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp_path), validate=False), log=lambda s: None)
    onnx_path = str(tmp_path / "cat.onnx")
    x = np.random.default_rng(0).standard_normal((1, 3, 192, 640)).astype(np.float32)
    with OnnxrtRunner(SessionFromOnnx(onnx_path, providers=["CPUExecutionProvider"])) as r:
        poly = r.infer({"images": x})
    with OnnxRuntimeRunner(onnx_path, device="cpu") as r:
        ours = r.infer({"images": x})
    for name in ours:
        np.testing.assert_array_equal(poly[name], ours[name])

    ref = TorchRunner(load_model(ckpt), ["cls_logits", "box_deltas"]).infer({"images": x})
    results = RunResults()
    results.append(("pytorch", [IterationResult(ref, runner_name="pytorch")]))
    results.append(("onnxrt", [IterationResult(ours, runner_name="onnxrt")]))
    acc = Comparator.compare_accuracy(results, compare_func=CompareFunc.simple(atol=1e-3, rtol=1e-3))
    assert bool(acc)
    per_output = acc[0][("pytorch", "onnxrt")][0]  # one compare function, one runner pair, one iteration
    mine = compare_outputs(ref, ours, TOLERANCES["fp32"])
    for name, res in per_output.items():
        assert res.max_absdiff == pytest.approx(mine[name]["max_abs"], rel=1e-6, abs=1e-12)
        assert mine[name]["passed"]
