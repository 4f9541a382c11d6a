"""TensorRT engine building without TensorRT: names checked against the real bindings, builder calls against the docs.

``build_engine`` runs on NVIDIA's real ``tensorrt/__init__.py`` of 10.9 and 11.4 over a
stand-in of the compiled core (``tests/trt_core.py``) whose every name exists in that
version's bindings and whose timing-cache behaviour follows the documented contract.
"""
import subprocess
import sys
from pathlib import Path

import pytest
import trt_core

from cat_deploy.config import DetectorOptions, ModelConfig
from cat_deploy.core.sidecar import Normalize, ShapeProfile, Sidecar
from cat_deploy.export.tensorrt import TIMING_CACHE_REFUSED, BuildFlags, build_engine
from cat_deploy.runtime.tensorrt import engine_compatibility

ROOT = Path(__file__).resolve().parents[2]
TRT_FILES = ["cat_deploy/export/tensorrt.py", "cat_deploy/runtime/tensorrt.py", "plugins/cat_pool_trt.py"]


@pytest.mark.parametrize("path", TRT_FILES)
def test_every_tensorrt_name_exists_in_the_bindings(path):
    """Each attribute the file reads or sets on a TensorRT object is a name of the 10.9, 10.16 and 11.4 bindings."""
    used = trt_core.trt_names_used(ROOT / path)
    assert used, "the scan found no TensorRT names"
    for version in trt_core.ALL_VERSIONS:
        python_only = set() if version in trt_core.FRONT_END_VERSIONS else {"nptype"}  # no __init__.py kept for 10.16
        missing = {n: line for n, line in used.items() if n not in python_only and not trt_core.has_name(version, n)}
        assert not missing, f"{path}: not in TensorRT {version}'s bindings: {missing}"


def test_name_scan_catches_a_removed_flag(tmp_path):
    """The scan finds names in code no test runs: BuilderFlag.FP16 exists in 10.x only."""
    src = tmp_path / "old.py"
    src.write_text("def f(trt):\n    c = trt.Builder(None).create_builder_config()\n"
                   "    if False:\n        c.set_flag(trt.BuilderFlag.FP16)\n")
    used = trt_core.trt_names_used(src, roots=("trt",))
    assert {"Builder", "create_builder_config", "set_flag", "BuilderFlag", "FP16"} <= set(used)
    assert trt_core.has_name("10.9.0.34", "FP16") and not trt_core.has_name("11.4.0.106", "FP16")


@pytest.fixture(params=trt_core.FRONT_END_VERSIONS)
def trt(request):
    saved = {k: m for k, m in sys.modules.items() if k == "tensorrt" or k.startswith("tensorrt.")}
    trt = trt_core.load_tensorrt(request.param, sys.modules)
    trt.Builder._built.clear()
    try:
        yield trt
    finally:
        trt_core.restore_modules(saved)


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not parsed by the stand-in")
    return path


PROFILE = ShapeProfile.make((64, 96), batch=2, dynamic=True)


def _build(trt, onnx_file, tmp_path, log=None, **kw):
    lines = []
    info = build_engine(onnx_file, tmp_path / "m.engine", PROFILE, log=lines.append if log is None else log, **kw)
    network, config = trt.Builder._built[-1]
    return info, network, config, lines


def test_strongly_typed_and_tf32_cleared_by_default(trt, onnx_file, tmp_path):
    for precision in ("fp32", "fp16", "int8"):
        info, network, config, _ = _build(trt, onnx_file, tmp_path, precision=precision)
        assert network.flags == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        assert config.flags == set(), f"{precision}: {config.flags}"  # TF32 (on by default) cleared, nothing else
        assert config.hardware_compatibility_level == trt.HardwareCompatibilityLevel.NONE
        assert config.profiles[0].shapes["images"] == (PROFILE.min, PROFILE.opt, PROFILE.max)
        assert info["tensorrt"] == trt.__version__ and info["precision"] == precision and info["strongly_typed"]
        assert (tmp_path / "m.engine").read_bytes() == b"plan"


def test_build_flags_reach_builder_and_sidecar(trt, onnx_file, tmp_path):
    info, _, config, _ = _build(trt, onnx_file, tmp_path, flags=BuildFlags(tf32=True, version_compatible=True,
                                                                            hardware_compatible=True))
    assert config.flags == {trt.BuilderFlag.TF32, trt.BuilderFlag.VERSION_COMPATIBLE}
    assert config.hardware_compatibility_level == trt.HardwareCompatibilityLevel.AMPERE_PLUS
    assert info["tf32"] and info["version_compatible"] and info["hardware_compatibility"] == "ampere_plus"


def test_engine_compatibility_reads_what_the_builder_writes(trt, onnx_file, tmp_path):
    built = trt.__version__
    major = int(built.split(".")[0])
    later, earlier = f"{major}.99.0", f"{major}.0.0"
    plain, _, _, _ = _build(trt, onnx_file, tmp_path)
    vc, _, _, _ = _build(trt, onnx_file, tmp_path, flags=BuildFlags(version_compatible=True, hardware_compatible=True))
    assert engine_compatibility(_sidecar(plain), later, "NVIDIA H200", "9.0")[0]
    assert engine_compatibility(_sidecar(plain), built, "NVIDIA L4", "8.9")[0]
    assert engine_compatibility(_sidecar(vc), later, "NVIDIA L4", "8.9")[0] == []
    errors = engine_compatibility(_sidecar(vc), earlier, "NVIDIA H200", "9.0")[0]
    assert errors and "version-compatible" in errors[0]
    errors = engine_compatibility(_sidecar(vc), f"{major + 1}.0.0", "NVIDIA H200", "9.0")[0]
    assert errors and f"{major}.x" in errors[0]
    errors = engine_compatibility(_sidecar(vc), built, "Tesla T4", "7.5")[0]
    assert errors and "8.0" in errors[0] and "\n" not in errors[0]


def _sidecar(engine: dict) -> Sidecar:
    """The engine sidecar as the exporter writes it, with ``engine`` = what build_engine returned."""
    model = ModelConfig(arch="shufflenetv2", task="detect", num_classes=6, input_size=(192, 640), letterbox=True,
                        detector=DetectorOptions())
    return Sidecar(artefact="cat.engine", model=model, input_size=(192, 640), profile=ShapeProfile.make((192, 640)),
                   normalize=Normalize(model.mean, model.std), precision={"precision": "fp32"},
                   output_names=("cls_logits", "box_deltas"), versions={"compute_capability": "9.0",
                                                                       "gpu": "NVIDIA H200"}, engine=engine)


def test_timing_cache_is_reused_and_updated(trt, onnx_file, tmp_path):
    cache = tmp_path / "timing.cache"
    info, _, _, lines = _build(trt, onnx_file, tmp_path, timing_cache=cache)
    assert cache.read_bytes() == f"CACHE|{trt_core.DEVICE}|1".encode() and info["timing_cache_used"]
    _build(trt, onnx_file, tmp_path, timing_cache=cache)
    assert cache.read_bytes() == f"CACHE|{trt_core.DEVICE}|2".encode()
    assert not any(TIMING_CACHE_REFUSED in line for line in lines)


def test_timing_cache_from_another_device_is_ignored(trt, onnx_file, tmp_path):
    cache = tmp_path / "timing.cache"
    foreign = b"CACHE|NVIDIA A100|7"
    cache.write_bytes(foreign)
    info, _, config, lines = _build(trt, onnx_file, tmp_path, timing_cache=cache)
    assert (tmp_path / "m.engine").read_bytes() == b"plan"  # the build went on
    assert [line for line in lines if line.startswith(TIMING_CACHE_REFUSED)]
    assert cache.read_bytes() == foreign and not info["timing_cache_used"]  # the other device's cache is kept


def test_timing_cache_none_after_build_does_not_crash(trt, onnx_file, tmp_path, monkeypatch):
    monkeypatch.setattr(trt.IBuilderConfig, "lose_cache", True, raising=False)
    monkeypatch.setattr(trt.IBuilderConfig, "__init__", _losing_init(trt.IBuilderConfig.__init__))
    cache = tmp_path / "timing.cache"
    _, _, _, lines = _build(trt, onnx_file, tmp_path, timing_cache=cache)
    assert (tmp_path / "m.engine").read_bytes() == b"plan" and not cache.exists()
    assert any(TIMING_CACHE_REFUSED in line for line in lines)


def _losing_init(init):
    def __init__(self):
        init(self)
        self.lose_cache = True  # get_timing_cache() returns None, as for a cache TensorRT dropped
    return __init__


@pytest.mark.slow
def test_export_cli_flags_reach_the_engine_sidecar(tmp_path):
    """``export.py --format trt --tf32 --version-compatible --hardware-compatible`` on the 11.4 stand-in."""
    code = (
        "import sys, json; sys.path[:0] = [{tests!r}, {root!r}]\n"
        "import trt_core; trt_core.load_tensorrt('11.4.0.106', sys.modules)\n"
        "import export\n"
        "rc = export.main(['--ckpt', 'assets/demo/cat_retinanet_tiny.pth', '--format', 'trt', '--out', {out!r},\n"
        "                  '--no-validate', '--tf32', '--version-compatible', '--hardware-compatible'])\n"
        "print(json.dumps(json.load(open({out!r} + '/cat.engine.json'))['engine']))\n"
    ).format(tests=str(ROOT / "tests"), root=str(ROOT), out=str(tmp_path / "out"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    engine = json.loads(out.stdout.strip().splitlines()[-1])
    assert engine["tensorrt"] == "11.4.0.106" and engine["tf32"] and engine["version_compatible"]
    assert engine["hardware_compatibility"] == "ampere_plus" and engine["strongly_typed"]
