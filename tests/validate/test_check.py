"""validate_artefact: no pass without a comparison; sidecar fields checked against the checkpoint."""
import json

import pytest
import torch
from cat_weights import assert_cat_reaches_output

from cat_deploy import save_checkpoint
from cat_deploy.export import ShapeProfile
from cat_deploy.exporter import ExportOptions, run_export
from cat_deploy.models import create_model, exercise_cat
from cat_deploy.validate.__main__ import main as validate_main
from cat_deploy.validate.check import sidecar_mismatches


@pytest.fixture(scope="module")
def graph_nms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graph_nms")
    model = exercise_cat(create_model("retinanet_tiny", num_classes=6, input_size=(96, 160)), seed=0)
    assert_cat_reaches_output(model, torch.randn(1, 3, 96, 160))
    ckpt = save_checkpoint(model, tmp / "det.pth")
    run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp / "out"), nms="graph", validate=False, simplify=False),
               log=lambda s: None)
    (tmp / "no_samples").mkdir()
    return ckpt, tmp


def test_graph_nms_without_images_is_a_failure(graph_nms, capsys):
    """--nms graph has no element-wise outputs: with no samples and --val-images 0 nothing is compared."""
    ckpt, tmp = graph_nms
    code = validate_main(["--ckpt", str(ckpt), "--artefact", str(tmp / "out" / "cat.onnx"), "--samples",
                          str(tmp / "no_samples"), "--val-images", "0", "--device", "cpu", "--json", str(tmp / "r.json")])
    out = capsys.readouterr().out
    report = json.loads((tmp / "r.json").read_text())
    assert code == 1 and "parity: FAILED" in out
    assert not report["detections"]["passed"] and "only 0 detections matched" in report["detections"]["reason"]
    assert "only 0 detections matched" in out


def test_sidecar_mismatches_name_each_field():
    model = create_model("retinanet_tiny", num_classes=6, class_names=tuple("abcdef"))
    config, profile = model.config, ShapeProfile.make((192, 640))
    side = {"task": "detect", "normalize": {"scale": 1 / 255, "mean": list(config.mean), "std": list(config.std)},
            "letterbox": True, "pad_value": 114, "channel_order": "RGB", "input_size": [192, 640],
            "class_names": list("abcdef"), "output_names": ["cls_logits", "box_deltas"], "model": config.to_dict()}
    names = side["output_names"]
    assert sidecar_mismatches(config, side, names, profile) == []
    bad = json.loads(json.dumps(side))
    bad["normalize"]["std"] = [1, 1, 1]
    bad["channel_order"] = "BGR"
    bad["model"]["detector"]["anchor_sizes"] = [8.0, 16.0, 32.0]
    got = sidecar_mismatches(config, bad, names, profile)
    assert [g.split(" ")[0] for g in got] == ["normalize.std", "channel_order", "model.detector.anchor_sizes"]
