"""export.py end to end: sidecar, parity report, per-module localiser, bad input, TensorRT absence."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from cat_weights import assert_cat_reaches_output

from cat_deploy import load_model, save_checkpoint
from cat_deploy.exporter import ExportOptions, run_export
from cat_deploy.export.precision import node_module_map
from cat_deploy.export.onnx import cat_module_names
from cat_deploy.models import create_model, exercise_cat
from cat_deploy.validate.localize import localize
from cat_deploy.validate.parity import MIN_MATCHED_DETECTIONS, TOLERANCES

ROOT = Path(__file__).parents[2]
CLASSES = ("car", "truck", "pedestrian", "cyclist", "traffic_light", "traffic_sign")


VAL_IMAGES = 16  # with the 6 samples, 40-odd detections at conf 0.25: above MIN_MATCHED_DETECTIONS


def exercised_demo(path: Path) -> Path:
    """The demo detector with exercise_cat weights (trained CAT factors barely moved off 0: its CAT pooling
    changes the output by ~1e-3 only), saved to ``path``; CAT is checked to reach the output."""
    demo = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"
    model = load_model(demo) if demo.is_file() else create_model("retinanet_tiny", num_classes=6, class_names=CLASSES)
    exercise_cat(model, seed=0)
    assert_cat_reaches_output(model, torch.randn(1, 3, *model.config.input_size))
    save_checkpoint(model, path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return exercised_demo(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


@pytest.fixture(scope="module")
def exported(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    result = run_export(ExportOptions(ckpt=str(ckpt), out=str(out), val_images=VAL_IMAGES, dynamic=True, batch=2),
                        log=lambda s: None)
    return result, out


def test_sidecar_and_parity(exported):
    result, out = exported
    assert result["passed"]
    side = json.loads((out / "cat.onnx.json").read_text())
    for key in ("model", "class_names", "input_size", "normalize", "precision", "gep", "versions", "parity", "profile"):
        assert key in side
    assert side["class_names"] == list(CLASSES) and side["gep"] == "stable"
    cases = side["parity"]["cases"]
    assert {c["name"].split("@")[0] for c in cases} >= {"random"} and len(cases) >= 3  # min/opt/max
    for c in cases:
        for s in c["outputs"].values():
            assert s["passed"] and s["cosine"] > 0.99999 and s["nan_out"] == 0
    det = side["parity"]["detections"]
    assert det["passed"] and det["matched"] >= MIN_MATCHED_DETECTIONS and "accuracy" in side["parity"]
    assert side["parity"]["sidecar"]["passed"]


def test_per_module_localiser_finds_planted_fault(ckpt, exported, tmp_path):
    from cat_deploy.export import deploy_module

    _, out = exported
    model = load_model(ckpt)
    names = cat_module_names(model)
    target = names[len(names) // 2]
    onnx_model = onnx.load(str(out / "cat.onnx"))
    owner = node_module_map(onnx_model.graph, [target])
    consumers = {}
    for n in onnx_model.graph.node:
        for i in n.input:
            consumers.setdefault(i, set()).add(n.name)
    # plant the fault: scale every weight that only the target CAT module uses (MLP, 7x7 conv, colla-factors)
    planted = 0
    for init in onnx_model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and consumers.get(init.name) and consumers[init.name] <= set(owner):
            init.CopyFrom(numpy_helper.from_array((arr * 1.5).astype(np.float32), init.name))
            planted += 1
    assert planted >= 2
    faulty = tmp_path / "faulty.onnx"
    onnx.save(onnx_model, str(faulty))
    x = np.random.default_rng(0).standard_normal((1, 3, 192, 640)).astype(np.float32)
    rep = localize(faulty, deploy_module(model), x, TOLERANCES["fp32"], names, device="cpu")
    assert rep["first_divergent"] == target, rep["first_divergent"]
    before = names[: names.index(target)]
    assert all(r["passed"] for r in rep["modules"] if r["module"] in before)


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "export.py"), *args], capture_output=True, text=True)


def test_cli_bad_checkpoint_one_line(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_text("hello")
    r = run_cli("--ckpt", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "bad.pth" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_cli_trt_without_tensorrt_keeps_onnx(ckpt, tmp_path):
    out = tmp_path / "o"
    r = run_cli("--ckpt", str(ckpt), "--out", str(out), "--format", "trt", "--no-validate")
    assert r.returncode == 3, r.stderr
    assert "pip install 'cat-deploy[trt]'" in r.stderr and "Traceback" not in r.stderr
    assert (out / "cat.onnx").is_file() and (out / "cat.onnx.json").is_file()
    assert r.stderr.strip().splitlines()[-1].startswith("export.py: error:")


@pytest.mark.tensorrt
def test_trt_engine_parity(ckpt, tmp_path):
    result = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp_path), format="trt", val_images=VAL_IMAGES),
                        log=lambda s: None)
    assert result["passed"] and (tmp_path / "cat.engine").is_file()


def test_fp16_export_parity(ckpt, tmp_path):
    result = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp_path), precision="fp16", val_images=VAL_IMAGES),
                        log=lambda s: None)
    assert result["passed"]
    side = json.loads((tmp_path / "cat.onnx.json").read_text())
    assert side["precision"]["precision"] == "fp16" and side["precision"]["fp32_nodes"]
    assert side["precision"]["cast_round_trips"] == 0 and side["precision"]["casts"] > 0


def test_reference_and_stable_onnx_agree(ckpt, tmp_path):
    import onnxruntime as ort

    outs = {}
    for gep in ("reference", "stable"):
        run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp_path / gep), gep=gep, validate=False), log=lambda s: None)
        sess = ort.InferenceSession(str(tmp_path / gep / "cat.onnx"), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).standard_normal((1, 3, 192, 640)).astype(np.float32)
        outs[gep] = sess.run(None, {"images": x})
    for a, b in zip(outs["reference"], outs["stable"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_standalone_validate_fails_on_faulty_artefact(ckpt, exported, tmp_path):
    import shutil

    _, out = exported
    model = onnx.load(str(out / "cat.onnx"))
    head = next(i for i in model.graph.initializer if "cls_logits" in i.name and i.name.endswith("bias"))
    head.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(head) + 1.0, head.name))
    onnx.save(model, str(tmp_path / "cat.onnx"))
    shutil.copy(out / "cat.onnx.json", tmp_path / "cat.onnx.json")
    cmd = [sys.executable, "-m", "cat_deploy.validate", "--ckpt", str(ckpt), "--val-images", str(VAL_IMAGES)]
    good = subprocess.run(cmd + ["--artefact", str(out / "cat.onnx")], capture_output=True, text=True, cwd=ROOT)
    bad = subprocess.run(cmd + ["--artefact", str(tmp_path / "cat.onnx")], capture_output=True, text=True, cwd=ROOT)
    assert good.returncode == 0, good.stdout + good.stderr
    assert bad.returncode == 1 and "FAIL" in bad.stdout and "parity: FAILED" in bad.stdout


def test_int8_needs_calibration_and_modelopt(ckpt, tmp_path):
    r = run_cli("--ckpt", str(ckpt), "--out", str(tmp_path / "a"), "--precision", "int8")
    assert r.returncode == 2 and "--calib-images" in r.stderr and "Traceback" not in r.stderr
    if importlib.util.find_spec("modelopt") is None:
        r = run_cli("--ckpt", str(ckpt), "--out", str(tmp_path / "b"), "--precision", "int8",
                    "--calib-images", str(ROOT / "assets" / "samples"), "--no-validate")
        assert r.returncode == 3 and "nvidia-modelopt" in r.stderr and "Traceback" not in r.stderr  # 3: missing
        assert not (tmp_path / "b" / "cat.fp32.onnx").exists()  # said before the export, not after it
