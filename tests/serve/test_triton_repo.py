"""``export.py --triton-repo``: the generated model repository, checked structurally.

Every ``config.pbtxt`` is parsed with protobuf's strict text-format parser into Triton's own
``ModelConfig`` message (from tritonclient), so an unknown field, a wrong enum or a type error
fails here, not at server start. The ensemble's wiring is checked edge by edge: each tensor a
step reads exists, with the dtype and shape its producer gives.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cat_deploy.core.sidecar import read_sidecar
from cat_deploy.exporter import ExportFailed, ExportOptions, run_export
from cat_deploy.serve.detector import OUTPUTS, ServeConfig
from cat_deploy.serve.triton_repo import TritonRepoError, TritonRepoOptions, to_pbtxt, write_triton_repository

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="tritonclient is not installed (pip install '.[serve-client]')")
from google.protobuf import text_format  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEMO_CKPT = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """export.py's code on the demo detector (an untrained tiny one if absent), dynamic batch 1..8, with
    ``--triton-repo DIR --triton-backend python --conf 0.3``: (the ONNX file, the repository)."""
    from cat_deploy import save_checkpoint
    from cat_deploy.data.synthetic import CLASSES
    from cat_deploy.models import create_model

    tmp = tmp_path_factory.mktemp("triton_export")
    ckpt = DEMO_CKPT
    if not ckpt.is_file():
        ckpt = tmp / "tiny.pth"
        save_checkpoint(create_model("retinanet_tiny", num_classes=6, class_names=CLASSES), ckpt)
    result = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp / "export"), validate=False, simplify=False,
                                      dynamic=True, batch=8, conf=0.3, triton_repo=str(tmp / "cli_repo"),
                                      triton_backend="python"), log=lambda s: None)
    return Path(result["onnx"]), result["triton"]


@pytest.fixture(scope="module")
def onnx_dynamic(exported):
    return exported[0]


def _configs(repo: Path) -> dict:
    out = {}
    for f in sorted(repo.glob("*/config.pbtxt")):
        msg = text_format.Parse(f.read_text(), model_config_pb2.ModelConfig())  # strict: unknown fields raise
        assert msg.name == f.parent.name
        out[msg.name] = msg
    return out


def _dtype(t) -> str:
    return model_config_pb2.DataType.Name(t.data_type)


def _check_ensemble(configs: dict, name: str) -> None:
    """Every tensor a step reads is the ensemble input or a previous step's output with the same dtype and dims."""
    ens = configs[name]
    assert ens.platform == "ensemble"
    avail = {t.name: (_dtype(t), list(t.dims)) for t in ens.input}
    for step in ens.ensemble_scheduling.step:
        model = configs[step.model_name]
        assert model.max_batch_size == ens.max_batch_size
        ins = {t.name: (_dtype(t), list(t.dims)) for t in model.input}
        outs = {t.name: (_dtype(t), list(t.dims)) for t in model.output}
        assert set(step.input_map) == set(ins), f"{step.model_name}: every input fed, no unknown ones"
        for key, tensor in step.input_map.items():
            assert tensor in avail, f"{step.model_name} reads '{tensor}', which no earlier step makes"
            have, want = avail[tensor], ins[key]
            assert have[0] == want[0], f"{step.model_name}.{key}: {have[0]} fed to {want[0]}"
            assert len(have[1]) == len(want[1]) and all(a == b or -1 in (a, b) for a, b in zip(have[1], want[1]))
        for key, tensor in step.output_map.items():
            assert key in outs, f"{step.model_name} has no output '{key}'"
            avail[tensor] = outs[key]
    for t in ens.output:
        assert avail.get(t.name) == (_dtype(t), list(t.dims)), f"ensemble output {t.name} not produced as declared"


def test_onnxruntime_repository(onnx_dynamic, tmp_path):
    import onnx

    info = write_triton_repository(onnx_dynamic, tmp_path / "repo")
    repo = info["repository"]
    configs = _configs(repo)
    assert set(configs) == {"cat_detect", "cat_detect_pre", "cat_detect_net", "cat_detect_post"}
    net, pre, post = configs["cat_detect_net"], configs["cat_detect_pre"], configs["cat_detect_post"]
    assert net.platform == "onnxruntime_onnx" and info["backend"] == "onnxruntime"
    sidecar = json.loads(Path(str(onnx_dynamic) + ".json").read_text())
    assert net.max_batch_size == sidecar["profile"]["max"][0] == 8
    graph = onnx.load(str(onnx_dynamic)).graph
    assert [t.name for t in net.input] == [i.name for i in graph.input] == ["images"]
    assert list(net.input[0].dims) == [3, *sidecar["input_size"]]
    assert [t.name for t in net.output] == [o.name for o in graph.output] == sidecar["output_names"]
    assert all(_dtype(t) == "TYPE_FP32" for t in net.output)
    for c in configs.values():
        if c.platform != "ensemble":
            assert c.HasField("dynamic_batching"), f"{c.name}: concurrent requests must merge"
            assert len(c.instance_group) == 1 and c.instance_group[0].count >= 1
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(net.instance_group[0].kind) == "KIND_AUTO"
    assert pre.backend == post.backend == "python"
    assert [_dtype(t) for t in pre.input] == ["TYPE_STRING"] and list(pre.input[0].dims) == [1]
    assert [t.name for t in configs["cat_detect"].output] == list(OUTPUTS)
    assert ServeConfig.from_json(pre.parameters["serve_config"].string_value) == ServeConfig()
    _check_ensemble(configs, "cat_detect")
    assert (repo / "cat_detect_net" / "1" / "model.onnx").read_bytes() == onnx_dynamic.read_bytes()
    for part, cls in (("pre", "PreprocessModel"), ("post", "PostprocessModel")):
        stub = (repo / f"cat_detect_{part}" / "1" / "model.py").read_text()
        assert f"from cat_deploy.serve.triton_models import {cls} as TritonPythonModel" in stub
        assert json.loads((repo / f"cat_detect_{part}" / "1" / "sidecar.json").read_text()) == sidecar
    assert "docker run" in (repo / "README.md").read_text()


def test_python_network_backend_and_serve_options(onnx_dynamic, tmp_path):
    opts = TritonRepoOptions(name="det", backend="python", serve=ServeConfig(conf=0.4, max_det=7), pre_instances=3)
    configs = _configs(write_triton_repository(onnx_dynamic, tmp_path / "repo", opts)["repository"])
    net = configs["det_net"]
    assert net.backend == "python" and not net.platform
    assert "NetworkModel" in (tmp_path / "repo" / "det_net" / "1" / "model.py").read_text()
    assert (tmp_path / "repo" / "det_net" / "1" / "model.onnx.json").is_file(), "the runner reads the sidecar"
    assert configs["det_pre"].instance_group[0].count == 3
    assert [list(t.dims) for t in configs["det"].output] == [[1], [7, 4], [7], [7]]
    assert ServeConfig.from_json(configs["det_post"].parameters["serve_config"].string_value).conf == 0.4
    _check_ensemble(configs, "det")


def _fake_engine(onnx_path: Path, tmp: Path, **changes) -> Path:
    """A stand-in plan file with an engine sidecar (TensorRT cannot build here): the writer only copies the plan."""
    d = tmp / "engine"
    d.mkdir()
    shutil.copy(onnx_path, d / "cat.onnx")
    sidecar = json.loads(Path(str(onnx_path) + ".json").read_text())
    sidecar.update({"onnx": "cat.onnx", "artefact": "cat.engine", **changes})
    (d / "cat.engine").write_bytes(b"not a real plan, copied as bytes")
    (d / "cat.engine.json").write_text(json.dumps(sidecar))
    return d / "cat.engine"


def test_tensorrt_plan_with_the_aot_plugin(onnx_dynamic, tmp_path):
    engine = _fake_engine(onnx_dynamic, tmp_path, gep="plugin")
    info = write_triton_repository(engine, tmp_path / "repo")
    configs = _configs(info["repository"])
    net = configs["cat_detect_net"]
    assert net.platform == "tensorrt_plan" and info["backend"] == "tensorrt"
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(net.instance_group[0].kind) == "KIND_GPU"
    assert (tmp_path / "repo" / "cat_detect_net" / "1" / "model.plan").read_bytes() == engine.read_bytes()
    text = (tmp_path / "repo" / "cat_detect_net" / "config.pbtxt").read_text()
    assert "AOT plugin" in text and "no plugin library" in text
    assert "AOT plugin" in (tmp_path / "repo" / "README.md").read_text()
    assert not net.HasField("model_operations"), "an AOT plan needs no op library"
    _check_ensemble(configs, "cat_detect")


@pytest.mark.parametrize("case, words", [
    ("plugin_onnx", "onnxruntime backend cannot run"),
    ("static_batch", "re-export with python export.py --dynamic --batch 4"),
    ("tensorrt_on_onnx", "needs an engine"),
    ("onnxruntime_on_engine", "is a TensorRT engine"),
])
def test_repositories_that_cannot_work_are_refused_in_one_line(onnx_dynamic, tmp_path, case, words):
    sidecar = json.loads(Path(str(onnx_dynamic) + ".json").read_text())
    onnx = tmp_path / "cat.onnx"
    shutil.copy(onnx_dynamic, onnx)
    backend = "auto"
    if case == "plugin_onnx":
        sidecar["gep"] = "plugin"
    if case == "static_batch":
        sidecar["profile"] = {k: [4, 3, 192, 640] for k in ("min", "opt", "max")}
        sidecar["dynamic"] = False
    if case == "tensorrt_on_onnx":
        backend = "tensorrt"
    Path(str(onnx) + ".json").write_text(json.dumps(sidecar))
    target = _fake_engine(onnx_dynamic, tmp_path) if case == "onnxruntime_on_engine" else onnx
    if case == "onnxruntime_on_engine":
        backend = "onnxruntime"
    with pytest.raises(TritonRepoError, match=words) as e:
        write_triton_repository(target, tmp_path / "repo", TritonRepoOptions(backend=backend))
    assert "\n" not in str(e.value)


def test_export_writes_the_repository(exported):
    """``export.py --triton-repo``: the repository of the artefact it exported, with its thresholds."""
    onnx, info = exported
    assert info["backend"] == "python" and info["max_batch_size"] == 8
    configs = _configs(info["repository"])
    assert ServeConfig.from_json(configs["cat_detect_pre"].parameters["serve_config"].string_value).conf == 0.3
    net = Path(info["repository"]) / "cat_detect_net" / "1"
    assert (net / "model.onnx").read_bytes() == onnx.read_bytes()
    assert read_sidecar(net / "model.onnx").replace(artefact="cat.onnx") == read_sidecar(onnx)
    _check_ensemble(configs, "cat_detect")


@pytest.mark.parametrize("flags, words", [
    (dict(batch=4), "exported for batch 4 only"),
    (dict(triton_backend="tensorrt"), "needs an engine"),
    (dict(gep="plugin", dynamic=True, batch=2), "onnxruntime backend cannot run"),
])
def test_export_refuses_an_unservable_repository_before_exporting(tmp_path, flags, words):
    """Asked for a repository Triton could not serve, export.py stops before it loads or writes anything (exit 2)."""
    opts = ExportOptions(ckpt=str(DEMO_CKPT), out=str(tmp_path / "export"), triton_repo=str(tmp_path / "repo"), **flags)
    with pytest.raises(ExportFailed, match=words) as e:
        run_export(opts, log=lambda s: None)
    assert e.value.code == 2 and "\n" not in str(e.value)
    assert not (tmp_path / "export").exists() and not (tmp_path / "repo").exists()


def test_pbtxt_writer():
    from cat_deploy.serve.triton_repo import Enum

    text = to_pbtxt({"name": "m", "max_batch_size": 4, "input": [{"name": "x", "data_type": Enum("TYPE_FP32"),
                                                                  "dims": [3, -1]}], "parameters": []})
    msg = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert (msg.name, msg.max_batch_size, list(msg.input[0].dims)) == ("m", 4, [3, -1])
    assert 'name: "m"' in text and "data_type: TYPE_FP32" in text
    assert np.isscalar(msg.max_batch_size)


def test_serve_cli_errors_are_one_line(onnx_dynamic, tmp_path, monkeypatch, capsys):
    """No repository: exit 2. No serve environment anywhere, or one without nvidia-pytriton: exit 3, saying how
    to make one. An interpreter path that does not exist: exit 2."""
    import sys

    from cat_deploy.core.optional import is_available
    from cat_deploy.serve import server
    from cat_deploy.serve.__main__ import main

    prog = "python -m cat_deploy.serve: error: "
    assert main(["--repo", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(prog) and "not a Triton model repository" in err and "\n" not in err
    repo = str(write_triton_repository(onnx_dynamic, tmp_path / "repo", TritonRepoOptions(backend="python"))["repository"])

    monkeypatch.delenv(server.SERVE_PYTHON_ENV, raising=False)
    monkeypatch.setattr(server, "CHECKOUT_SERVE_PYTHON", tmp_path / "no-venv" / "bin" / "python")
    monkeypatch.setitem(sys.modules, "pytriton", None)  # nvidia-pytriton not installed here
    assert main(["--repo", repo]) == 3
    assert capsys.readouterr().err.strip() == prog + server.INSTALL_HINT

    assert main(["--repo", repo, "--python", str(tmp_path / "missing" / "python")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(prog) and "is not an executable file" in err and "\n" not in err

    monkeypatch.delitem(sys.modules, "pytriton")
    if is_available("pytriton"):
        pytest.skip("nvidia-pytriton is installed in this environment: no interpreter without it to point at")
    assert main(["--repo", repo, "--python", sys.executable]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith(prog) and "cannot run the server" in err and "pytriton" in err and "\n" not in err
