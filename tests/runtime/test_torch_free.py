"""The deployment runtime without PyTorch, in this environment: the training stack made unimportable.

A subprocess sets ``sys.modules[name] = None`` for PyTorch, torchvision, timm, onnx and friends
(any import of them then raises ImportError) and runs ``infer.py`` on an exported ONNX file.
The same check on a real install of ``cat-deploy[runtime]`` is ``tests/test_install.py``.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"
BLOCKED = ("torch", "torchvision", "timm", "onnx", "onnxslim", "onnxscript", "triton", "tensorrt", "matplotlib")
PRELUDE = f"import sys\nfor _m in {BLOCKED!r}:\n    sys.modules[_m] = None\n"


def _python(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PRELUDE + code, *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def test_runtime_modules_import_without_pytorch():
    code = ("import cat_deploy, cat_deploy.core, cat_deploy.data, cat_deploy.runtime.detect, cat_deploy.runtime.backends,"
            " cat_deploy.runtime.tensorrt, cat_deploy.runtime.boxes\nprint(sorted(m for m in sys.modules if m in "
            f"{BLOCKED!r} and sys.modules[m] is not None))")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from cat_deploy.exporter import ExportOptions, run_export

    out = tmp_path_factory.mktemp("export")
    res = run_export(ExportOptions(ckpt=str(DEMO), out=str(out), validate=False, simplify=False), log=lambda s: None)
    return res["onnx"]


def test_infer_on_onnx_without_pytorch_matches_the_full_stack(exported, tmp_path):
    from cat_deploy.runtime.detect import DetectOptions, run_detection

    run = "import runpy\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    args = ["--engine", exported, "--images", ROOT / "assets" / "samples", "--device", "cpu", "--quiet", "--conf", "0.05"]
    proc = _python(run, ROOT / "infer.py", *args, "--out", tmp_path / "lean")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "lean" / "summary.json").read_text())["fused_ops"] is None  # no fused nodes
    run_detection(DetectOptions(engine=str(exported), images=str(ROOT / "assets" / "samples"), out=str(tmp_path / "full"),
                                device="cpu", quiet=True, conf=0.05))
    lean = json.loads((tmp_path / "lean" / "detections.json").read_text())
    full = json.loads((tmp_path / "full" / "detections.json").read_text())
    assert lean["annotations"] == full["annotations"] and len(full["annotations"]) >= 10


def test_a_checkpoint_without_pytorch_is_one_line(tmp_path):
    run = "import runpy\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    proc = _python(run, ROOT / "infer.py", "--engine", DEMO, "--images", ROOT / "assets" / "samples", "--out", tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "PyTorch" in err and "pip install 'cat-deploy[export]'" in err, err


def test_infer_on_a_plugin_onnx_without_pytorch_runs_the_compiled_op(ort_ops_library, exported, tmp_path):
    """``--gep plugin``: the fused nodes run through the C++ library (the Python twin needs PyTorch, blocked here);
    detections match the full stack on the ``--gep stable`` export of the same checkpoint."""
    from cat_deploy.exporter import ExportOptions, run_export
    from cat_deploy.runtime.detect import DetectOptions, run_detection

    plugin = run_export(ExportOptions(ckpt=str(DEMO), out=str(tmp_path / "plugin"), gep="plugin", validate=False,
                                      simplify=False), log=lambda s: None)["onnx"]
    run = "import runpy\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    args = ["--images", ROOT / "assets" / "samples", "--device", "cpu", "--quiet", "--conf", "0.05"]
    proc = _python(run, ROOT / "infer.py", "--engine", plugin, *args, "--out", tmp_path / "lean")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "lean" / "summary.json").read_text())["fused_ops"] == "compiled"
    run_detection(DetectOptions(engine=str(exported), images=str(ROOT / "assets" / "samples"), out=str(tmp_path / "full"),
                                device="cpu", quiet=True, conf=0.05))
    lean = json.loads((tmp_path / "lean" / "detections.json").read_text())["annotations"]
    full = json.loads((tmp_path / "full" / "detections.json").read_text())["annotations"]
    assert len(full) >= 10 and [(a["image_id"], a["category_id"]) for a in lean] == [
        (a["image_id"], a["category_id"]) for a in full]
    for a, b in zip(lean, full):
        assert abs(a["score"] - b["score"]) <= 1e-4 and max(abs(u - v) for u, v in zip(a["bbox"], b["bbox"])) <= 0.05
