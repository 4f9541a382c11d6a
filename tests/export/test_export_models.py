"""Every zoo model exports and matches PyTorch, on weights where every CAT branch reaches the output.

Classifiers go through the command line (``export.py`` main, static and ``--dynamic``, parity on),
as users run it; the dynamic export is validated at its min, opt and max shapes. Detectors are
exported here and checked at the export size and at a second size.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from cat_weights import assert_cat_reaches_output

from cat_deploy import save_checkpoint
from cat_deploy.export import ShapeProfile, deploy_module, export_onnx, output_names
from cat_deploy.models import create_model, exercise_cat
from cat_deploy.validate.parity import match_detections

ROOT = Path(__file__).resolve().parents[2]
CLASSIFIERS = ["resnet50", "resnet101", "mobilenetv2", "shufflenetv2"]
ATTNS = ["cat", "se", "eca", "cbam", None]
SIZE = 64


def _export_cli():
    spec = importlib.util.spec_from_file_location("export_cli", ROOT / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


export_cli = _export_cli()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


def classifier_checkpoint(workdir: Path, arch: str, attn) -> Path:
    """A saved zoo classifier on exercise_cat weights (made once per worker), CAT checked to reach the output."""
    path = workdir / f"{arch}_{attn}.pth"
    if not path.is_file():
        model = exercise_cat(create_model(arch, attn=attn, num_classes=10), 0, (SIZE, SIZE)).eval()
        if attn == "cat":
            assert_cat_reaches_output(model, torch.randn(1, 3, SIZE, SIZE))
        save_checkpoint(model, path)
    return path


def run_cli(args, capsys):
    code = export_cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 0, captured.out[-2000:] + captured.err[-2000:]
    return captured.out


@pytest.mark.slow
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("attn", ATTNS, ids=str)
@pytest.mark.parametrize("arch", CLASSIFIERS)
def test_classifier_cli_export_with_parity(workdir, arch, attn, dynamic, capsys):
    ckpt = classifier_checkpoint(workdir, arch, attn)
    out = workdir / f"{arch}_{attn}_{'dynamic' if dynamic else 'static'}"
    args = ["--ckpt", ckpt, "--out", out]
    if dynamic:
        args += ["--dynamic", "--batch", 2, "--imgsz", SIZE, SIZE + 16, "--min-imgsz", 48, "--max-imgsz", 96]
    else:
        args += ["--imgsz", SIZE]  # one value: a square
    assert "parity: PASSED" in run_cli(args, capsys)
    side = json.loads((out / "cat.onnx.json").read_text())
    report = side["parity"]
    assert report["passed"] and side["input_size"] == [SIZE, SIZE + 16 if dynamic else SIZE]
    shapes = {tuple(c["shape"]) for c in report["cases"]}
    want = {(1, 3, 48, 48), (2, 3, SIZE, SIZE + 16), (2, 3, 96, 96)} if dynamic else {(1, 3, SIZE, SIZE)}
    assert want <= shapes
    for case in report["cases"]:
        s = case["outputs"]["logits"]
        assert s["passed"] and s["compared"] == case["shape"][0] * 10 and s["cosine"] > 0.99999


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime_extensions") is None,
                    reason="onnxruntime-extensions is not installed (pip install '.[plugin]')")
def test_classifier_cli_export_plugin(workdir, capsys):
    ckpt = classifier_checkpoint(workdir, "shufflenetv2", "cat")
    out = workdir / "plugin"
    assert "parity: PASSED" in run_cli(["--ckpt", ckpt, "--out", out, "--imgsz", SIZE, "--gep", "plugin"], capsys)
    assert json.loads((out / "cat.onnx.json").read_text())["gep"] == "plugin"


def run_both(model, path, sizes, names):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, h, w in sizes:
        x = torch.randn(b, 3, h, w)
        with torch.no_grad():
            ref = model(x)
        ref = ref if isinstance(ref, tuple) else (ref,)
        out = sess.run(names, {"images": x.numpy()})
        for name, r, o in zip(names, ref, out):
            assert o.shape == tuple(r.shape), name
            np.testing.assert_allclose(o, r.numpy(), rtol=1e-3, atol=1e-4 * np.abs(r.numpy()).max(),
                                       err_msg=f"{name} at {(b, h, w)}")


@pytest.mark.parametrize("nms", ["host", "graph"])
def test_detector_export_two_sizes(tmp_path, nms):
    model = exercise_cat(create_model("retinanet_tiny", num_classes=6), 0, (96, 320)).eval()
    assert_cat_reaches_output(model, torch.randn(1, 3, 96, 320))
    names = output_names(model, nms)
    module = deploy_module(model, nms, conf=0.01)
    path = tmp_path / "det.onnx"
    export_onnx(module, path, ShapeProfile.make((96, 320), batch=2, dynamic=True), names)
    if nms == "host":
        run_both(module, path, [(2, 96, 320), (1, 128, 224)], names)
    else:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for b, h, w in [(2, 96, 320), (1, 128, 224)]:
            x = torch.randn(b, 3, h, w)
            with torch.no_grad():
                ref = [t.numpy() for t in module(x)]
            out = sess.run(names, {"images": x.numpy()})
            np.testing.assert_array_equal(out[0], ref[0])  # num_dets
            # As sets: an untrained head scores many anchors alike, so near-ties may come out in either order.
            m = match_detections(graph_detections(ref), graph_detections(out), iou=0.99)
            assert m["matched"] >= 20 and min(m["agreement_ref"], m["agreement_out"]) >= 0.97, m
            assert m["max_score_drift"] < 1e-5, m


def graph_detections(outputs):
    num, boxes, scores, classes = outputs
    return [{"boxes": boxes[i, :n], "scores": scores[i, :n], "labels": classes[i, :n]} for i, n in enumerate(num[:, 0])]


def test_resnet50_retinanet_exports(tmp_path):
    model = exercise_cat(create_model("retinanet_resnet50", num_classes=3), 0, (128, 128)).eval()
    assert_cat_reaches_output(model, torch.randn(1, 3, 128, 128))
    path = tmp_path / "r50.onnx"
    export_onnx(model, path, ShapeProfile.make((128, 128), dynamic=True), ["cls_logits", "box_deltas"], simplify=False)
    run_both(model, path, [(1, 128, 128), (1, 160, 96)], ["cls_logits", "box_deltas"])
