"""Optional dependencies: imported on first use, and a missing one names the extra to install in one line."""
import sys

import pytest

from cat_deploy.core.errors import BackendUnavailable, MissingDependency
from cat_deploy.core.files import atomic_write
from cat_deploy.core.optional import is_available, lazy_import, require, require_cudart, require_tensorrt


def test_lazy_import_defers_the_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    mod = lazy_import("colorsys")
    assert "colorsys" not in sys.modules
    assert mod.rgb_to_hsv(1, 0, 0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules


@pytest.mark.parametrize("name, words", [
    ("tensorrt", ["TensorRT", "pip install 'cat-deploy[trt]'"]),
    ("torch", ["PyTorch", "pip install 'cat-deploy[export]'"]),
    ("av", ["PyAV", "cat-deploy[video]"]),
    ("modelopt.onnx.quantization", ["ModelOpt", "nvidia-modelopt[onnx]"]),
    ("onnxruntime_extensions", ["cat-deploy[plugin]"]),
])
def test_missing_dependency_names_the_extra(monkeypatch, name, words):
    monkeypatch.setitem(sys.modules, name.split(".")[0], None)  # as if not installed
    with pytest.raises(MissingDependency) as e:
        require(name, "this step", "or do something else")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("this step needs") and msg.endswith("or do something else")
    assert all(w in msg for w in words), msg
    assert isinstance(e.value, ImportError) and isinstance(e.value, BackendUnavailable)
    with pytest.raises(MissingDependency):
        lazy_import(name).anything  # noqa: B018


def test_a_cat_deploy_module_names_the_package_it_lacks(monkeypatch):
    """A lazily imported cat_deploy module that needs PyTorch says PyTorch, not the module."""
    for m in [m for m in sys.modules if m == "cat_deploy.checkpoint"]:
        monkeypatch.delitem(sys.modules, m)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependency, match=r"checkpoints needs PyTorch.*cat-deploy\[export\]"):
        require("cat_deploy.checkpoint", "checkpoints")


def test_tensorrt_and_cuda_python_helpers():
    if is_available("tensorrt"):
        pytest.skip("TensorRT is installed")
    with pytest.raises(MissingDependency) as e:
        require_tensorrt("'m.engine'", "or run m.onnx")
    assert "pip install 'cat-deploy[trt]'" in str(e.value) and "m.onnx" in str(e.value)
    if not is_available("cuda.bindings") and not is_available("cuda.cudart"):
        with pytest.raises(MissingDependency, match="cuda-python"):
            require_cudart()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def fail(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    atomic_write(path, lambda tmp: open(tmp, "w").write("new"))
    assert path.read_text() == "new"
