"""The typed sidecar: version-1 files written before it existed still read; bad ones fail in one line."""
import json
from pathlib import Path

import pytest

from cat_deploy.config import DetectorOptions, ModelConfig
from cat_deploy.core.errors import SidecarError
from cat_deploy.core.sidecar import (SIDECAR_VERSION, Normalize, PostprocessOptions, ShapeProfile, Sidecar,
                                     read_sidecar, sidecar_path)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
V1_FILES = sorted(FIXTURES.glob("*.onnx.json"))  # written by export.py before the typed sidecar (commit 15be0ae)


def _sidecar(**changes) -> Sidecar:
    model = ModelConfig(arch="shufflenetv2", task="detect", num_classes=2, class_names=("car", "person"),
                        input_size=(192, 640), letterbox=True, detector=DetectorOptions())
    side = Sidecar(artefact="cat.onnx", model=model, input_size=(192, 640),
                   profile=ShapeProfile.make((192, 640), batch=2, dynamic=True), normalize=Normalize(model.mean, model.std),
                   precision={"precision": "fp32", "policy": "all FP32", "fp32_nodes": "all"},
                   output_names=("cls_logits", "box_deltas"), class_names=model.class_names, nms="host",
                   postprocess=PostprocessOptions(), opset=17, checkpoint="m.pth", versions={"torch": "2.14.1"})
    return side.replace(**changes)


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.name)
def test_version_1_files_read_and_round_trip(path):
    data = json.loads(path.read_text())
    side = Sidecar.from_dict(data, str(path))
    assert side.version == 1 and side.task == data["task"] and side.model.to_dict()["arch"] == data["model"]["arch"]
    assert side.profile.to_dict() == data["profile"] and side.dynamic == data["dynamic"]
    assert json.loads(side.to_json()) == data  # same keys, same values: old and new writers agree


def test_fixtures_exist():
    assert len(V1_FILES) >= 2, "tests/core/fixtures holds sidecars written by the exporter before this change"


def test_write_then_read(tmp_path):
    side = _sidecar(parity={"passed": True})
    side.write(tmp_path / "det.onnx")
    back = read_sidecar(tmp_path / "det.onnx")
    assert back == side.replace(artefact="det.onnx")
    assert json.loads(sidecar_path(tmp_path / "det.onnx").read_text())["format"] == "cat-deploy-artefact"


def _edited(tmp_path, edit) -> str:
    data = _sidecar().to_dict()
    edit(data)
    (tmp_path / "cat.onnx.json").write_text(json.dumps(data))
    with pytest.raises(SidecarError) as e:
        read_sidecar(tmp_path / "cat.onnx")
    msg = str(e.value)
    assert "\n" not in msg and "cat.onnx.json" in msg
    return msg


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(version=SIDECAR_VERSION + 1), ["newer", "upgrade cat-deploy"]),
    (lambda d: d.update(format="something-else"), ["not a cat-deploy sidecar"]),
    (lambda d: d.pop("model"), ["lacks", "model"]),
    (lambda d: d.update(input_size="big"), ["input_size", "[height, width]"]),
    (lambda d: d.update(input_size=[192]), ["input_size"]),
    (lambda d: d["normalize"].update(std=[0.2, 0, 0.2]), ["normalize.std", "positive"]),
    (lambda d: d["normalize"].update(mean="imagenet"), ["normalize.mean"]),
    (lambda d: d["profile"].update(min=[4, 3, 192, 640]), ["profile", "batch min 4, opt 2", "not in order"]),
    (lambda d: d.update(precision={"precision": "fp8"}), ["precision"]),
    (lambda d: d.update(channel_order="RGBA"), ["channel_order"]),
    (lambda d: d.update(nms="sometimes"), ["nms"]),
    (lambda d: d.update(postprocess={"conf": "high", "iou": 0.5, "max_det": 100}), ["postprocess"]),
    (lambda d: d.update(postprocess={"conf": 2, "iou": 0.5, "max_det": 100}), ["postprocess"]),
    (lambda d: d.update(class_names=["car"]), ["1 class names", "2 classes"]),
    (lambda d: d.update(task="classify"), ["task"]),
    (lambda d: d.update(dynamic=False), ["dynamic"]),
    (lambda d: d.update(pad_value=300), ["pad_value"]),
    (lambda d: d.update(colour="blue"), ["unknown fields", "colour"]),
    (lambda d: d["model"].update(arch=None, bogus=1), ["model"]),
    (lambda d: d.update(versions=None), ["versions"]),
])
def test_edited_sidecars_fail_in_one_line(tmp_path, edit, words):
    msg = _edited(tmp_path, edit)
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("text, words", [("[1, 2, 3]", ["not a JSON object", "list"]), ("{oops", ["not valid JSON"]),
                                         ('"cat"', ["not a JSON object"])])
def test_not_an_object(tmp_path, text, words):
    (tmp_path / "cat.onnx.json").write_text(text)
    with pytest.raises(SidecarError) as e:
        read_sidecar(tmp_path / "cat.onnx")
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words)


def test_missing_sidecar_says_how_to_get_one(tmp_path):
    with pytest.raises(SidecarError, match="has no sidecar.*export.py"):
        read_sidecar(tmp_path / "cat.onnx")


def test_profile_helpers():
    p = ShapeProfile.make((64, 96), batch=4, dynamic=True)
    assert p.min == (1, 3, 32, 48) and p.opt == (4, 3, 64, 96) and p.max == (4, 3, 128, 192) and p.dynamic
    assert ShapeProfile.make((64, 96)).shapes() == [(1, 3, 64, 96)]
    with pytest.raises(ValueError, match="must lie between"):
        ShapeProfile.make((64, 96), dynamic=True, min_imgsz=(80, 80))
