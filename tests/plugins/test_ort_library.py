"""Which implementation ONNX Runtime gets for the fused CAT nodes, and whole models through the compiled one.

``fused_session_options`` registers the compiled library when it is built, the Python twin when it is not,
and says in one line how to build it when neither can run. Whole models: ``--gep plugin`` exports of the
demo detector and of a CAT ResNet-50 (both with ``exercise_cat`` weights, so every CAT branch reaches the
output) pass ``python -m cat_deploy.validate`` against PyTorch with the twin made unusable.
"""
import importlib.util
from pathlib import Path

import pytest
import torch
from cat_weights import assert_cat_reaches_output
from ort_graphs import pool_model

from cat_deploy import load_model, save_checkpoint
from cat_deploy.core.errors import MissingDependency, PluginUnavailable
from cat_deploy.exporter import ExportOptions, run_export
from cat_deploy.models import create_model, exercise_cat
from cat_deploy.plugins import ort_library
from cat_deploy.plugins.ort_library import ENV, fused_session_options, library_path, mentions_fused_nodes
from cat_deploy.runtime.runners import OnnxRuntimeRunner
from cat_deploy.validate.__main__ import main as validate_main

DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo" / "cat_retinanet_tiny.pth"


class _NoTwin:
    """Stands in for the Python twin's module: any use of it fails the test."""

    def twin_session_options(self, options=None):
        raise AssertionError("the Python twin was used, not the compiled library")


class _TwinMissing:
    def twin_session_options(self, options=None):
        raise MissingDependency("the Python twin needs PyTorch, which is not installed")


def test_compiled_library_is_registered_for_fused_graphs_only(ort_ops_library, tmp_path):
    assert library_path() == ort_ops_library
    opts, ops = fused_session_options(pool_model(1))
    assert ops == "compiled" and opts is not None
    plain = b"\x08\x09" + b"Conv" * 4  # bytes of a graph that names no fused node
    assert fused_session_options(plain) == (None, None)
    assert fused_session_options(plain, plugin=True)[1] == "compiled"  # the sidecar's word is taken
    path = tmp_path / "pool.onnx"
    path.write_bytes(pool_model(1))
    assert mentions_fused_nodes(path) and not mentions_fused_nodes(tmp_path / "missing.onnx")


def test_environment_names_the_library(ort_ops_library, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(ort_ops_library))
    assert library_path() == ort_ops_library
    monkeypatch.setenv(ENV, str(tmp_path / "nothing.so"))
    with pytest.raises(PluginUnavailable, match="is not a file: unset it, or build it: python -m cat_deploy.plugins"):
        library_path()


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime_extensions") is None,
                    reason="onnxruntime-extensions is not installed (pip install '.[plugin]')")
def test_without_the_library_the_twin_runs(monkeypatch):
    monkeypatch.setattr(ort_library, "library_path", lambda: None)
    assert fused_session_options(pool_model(1))[1] == "twin"


def test_without_library_and_twin_one_line_says_how_to_build(monkeypatch):
    monkeypatch.setattr(ort_library, "library_path", lambda: None)
    monkeypatch.setattr(ort_library, "cat_pool_ort", _TwinMissing())
    with pytest.raises(PluginUnavailable) as info:
        fused_session_options(pool_model(1))
    msg = str(info.value)
    assert "\n" not in msg and "python -m cat_deploy.plugins.build (or bash scripts/setup.sh)" in msg, msg


def _validate(ckpt, onnx_path, capsys, *extra) -> str:
    code = validate_main(["--ckpt", str(ckpt), "--artefact", str(onnx_path), "--device", "cpu", *map(str, extra)])
    out = capsys.readouterr()
    assert code == 0, out.out[-3000:] + out.err[-2000:]
    return out.out


@pytest.fixture
def compiled_only(ort_ops_library, monkeypatch):
    monkeypatch.setattr(ort_library, "cat_pool_ort", _NoTwin())


@pytest.mark.slow
def test_detector_plugin_export_passes_validate_on_the_compiled_op(compiled_only, tmp_path, capsys):
    demo = load_model(DEMO)
    exercise_cat(demo, seed=0)
    assert_cat_reaches_output(demo, torch.randn(1, 3, *demo.config.input_size))
    ckpt = tmp_path / "tiny.pth"
    save_checkpoint(demo, ckpt)
    onnx_path = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp_path / "out"), gep="plugin", validate=False),
                           log=lambda s: None)["onnx"]
    with OnnxRuntimeRunner(onnx_path, device="cpu") as runner:
        assert runner.fused_ops == "compiled"
    assert "parity: PASSED" in _validate(ckpt, onnx_path, capsys, "--val-images", 16)


@pytest.mark.slow
def test_resnet50_plugin_export_passes_validate_on_the_compiled_op(compiled_only, tmp_path, capsys):
    model = exercise_cat(create_model("resnet50", attn="cat", num_classes=10), 0, (64, 64)).eval()
    assert_cat_reaches_output(model, torch.randn(1, 3, 64, 64))
    ckpt = tmp_path / "r50.pth"
    save_checkpoint(model, ckpt)
    onnx_path = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp_path / "out"), gep="plugin", imgsz=(64, 64),
                                         validate=False), log=lambda s: None)["onnx"]
    with OnnxRuntimeRunner(onnx_path, device="cpu") as runner:
        assert runner.fused_ops == "compiled"
    assert "parity: PASSED" in _validate(ckpt, onnx_path, capsys)
