"""What gets installed: the package list, the torch-free runtime extra, and the plugin in a wheel.

The two ``slow`` tests build a wheel from a copy of the sources and install it into fresh
virtual environments (pip's cache keeps reruns cheap):

* ``pip install "cat-deploy[runtime]"`` alone -- numpy, Pillow, ONNX Runtime, no PyTorch --
  runs ``infer.py`` on an exported ONNX file and gets the detections the full install gets;
* the wheel installed non-editable (PyTorch and the rest seen from this environment through a
  ``.pth`` file, so nothing heavy is installed twice) imports ``cat_deploy.plugins`` from the
  wheel and runs ``export.py --gep plugin`` with parity.

Scripts run with ``python -I`` (isolated mode): neither ``PYTHONPATH`` nor the script's folder
is on ``sys.path``, so ``cat_deploy`` comes from the environment under test, not the checkout.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"
SAMPLES = ROOT / "assets" / "samples"


def test_pyproject_lists_every_package():
    """setuptools gets an explicit package list (for the plugins mapping): it must name every sub-package."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(Path(folder).relative_to(ROOT).parts)
             for folder, _, files in os.walk(ROOT / "cat_deploy", followlinks=True) if "__init__.py" in files}
    assert sorted(tool["packages"]) == sorted(found)
    assert tool["package-dir"] == {"cat_deploy.plugins": "plugins"}
    assert (ROOT / "cat_deploy" / "plugins").resolve() == (ROOT / "plugins").resolve()


def _run(cmd, timeout=900, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env, **kw)
    return proc


def _ok(proc):
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the package sources (the checkout gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT / "cat_deploy", src / "cat_deploy", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "plugins", src / "plugins", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    out = tmp_path_factory.mktemp("wheel")
    offline = ["--no-build-isolation"] if _has_setuptools() else []  # else pip fetches setuptools (cached)
    _ok(_run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *offline, "-w", out, src]))
    (whl,) = out.glob("cat_deploy-*.whl")
    return whl


def _has_setuptools() -> bool:
    """Whether this environment can build the wheel itself (setuptools >= 70.1, or the wheel package)."""
    for name in ("setuptools.command.bdist_wheel", "wheel.bdist_wheel"):
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except ImportError:
            continue
    return False


def _venv(path: Path, see_this_environment: bool = False) -> Path:
    venv.create(path, with_pip=True, clear=True)
    py = path / "bin" / "python"
    if see_this_environment:  # PyTorch, onnx, ... from this environment: installed once, not per test
        site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
        (site / "_outer_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


def _detections(path: Path) -> dict:
    doc = json.loads(path.read_text())
    names = {im["id"]: im["file_name"] for im in doc["images"]}
    out: dict = {}
    for a in doc["annotations"]:
        out.setdefault(names[a["image_id"]], []).append((a["category_id"], a["score"], a["bbox"]))
    return {k: sorted(v, key=lambda d: -d[1]) for k, v in out.items()}


@pytest.fixture(scope="module")
def demo_onnx(tmp_path_factory):
    from cat_deploy.exporter import ExportOptions, run_export

    out = tmp_path_factory.mktemp("demo_export")
    run_export(ExportOptions(ckpt=str(DEMO), out=str(out), validate=False), log=lambda s: None)
    return out / "cat.onnx"


@pytest.mark.slow
def test_runtime_extra_runs_infer_without_pytorch(wheel, demo_onnx, tmp_path):
    py = _venv(tmp_path / "venv")
    _ok(_run([py, "-m", "pip", "install", "-q", f"{wheel}[runtime]"]))
    check = _ok(_run([py, "-I", "-c", "import importlib.util as u, cat_deploy.runtime, cat_deploy.runtime.detect; "
                      "print([m for m in ('torch', 'torchvision', 'timm', 'onnx') if u.find_spec(m)])"]))
    assert check.stdout.strip() == "[]", "the runtime extra installed a training package"

    args = ["--engine", demo_onnx, "--images", SAMPLES, "--device", "cpu", "--quiet", "--conf", "0.05"]
    _ok(_run([py, "-I", ROOT / "infer.py", *args, "--out", tmp_path / "lean"]))
    _ok(_run([sys.executable, ROOT / "infer.py", *args, "--out", tmp_path / "full"], cwd=ROOT))
    lean, full = _detections(tmp_path / "lean" / "detections.json"), _detections(tmp_path / "full" / "detections.json")
    assert set(lean) == set(full) and sum(map(len, full.values())) >= 10
    for name in full:
        assert [d[0] for d in lean[name]] == [d[0] for d in full[name]], name
        np.testing.assert_allclose([d[1] for d in lean[name]], [d[1] for d in full[name]], atol=1e-5)
        np.testing.assert_allclose([d[2] for d in lean[name]], [d[2] for d in full[name]], atol=0.011)

    pth = _run([py, "-I", ROOT / "infer.py", "--engine", DEMO, "--images", SAMPLES, "--out", tmp_path / "pth"])
    assert pth.returncode == 2 and "pip install 'cat-deploy[export]'" in pth.stderr
    assert pth.stderr.strip().count("\n") == 0 and "Traceback" not in pth.stderr


@pytest.mark.slow
def test_wheel_installs_the_plugin_and_exports_with_it(wheel, tmp_path):
    pytest.importorskip("onnxruntime_extensions", reason="the plugin's ONNX Runtime twin needs onnxruntime-extensions")
    py = _venv(tmp_path / "venv", see_this_environment=True)
    _ok(_run([py, "-m", "pip", "install", "-q", "--no-deps", wheel]))
    where = _ok(_run([py, "-I", "-c", "import cat_deploy, cat_deploy.plugins, cat_deploy.plugins.cat_pool_ort as m; "
                      "print(cat_deploy.__file__); print(m.__file__)"])).stdout.split()
    site = tmp_path / "venv" / "lib"
    assert all(Path(p).is_relative_to(site) for p in where), where  # the wheel's copy, not the checkout

    out = tmp_path / "export"
    proc = _ok(_run([py, "-I", ROOT / "export.py", "--ckpt", DEMO, "--gep", "plugin", "--out", out, "--samples",
                     SAMPLES, "--val-images", "8"], cwd=tmp_path))  # >= 20 matched detections (issue 9)
    assert "parity: PASSED" in proc.stdout
    side = json.loads((out / "cat.onnx.json").read_text())
    assert side["gep"] == "plugin" and side["parity"]["passed"] and side["parity"]["cases"]
