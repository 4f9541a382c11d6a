"""Every zoo model exports and matches PyTorch at the export size and at a second size (dynamic axes)."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from cat_deploy.export import ShapeProfile, deploy_module, export_onnx, output_names
from cat_deploy.models import create_model

ATTNS = ["cat", "se", "eca", "cbam", None]


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
            np.testing.assert_allclose(o, r.numpy(), rtol=1e-3, atol=1e-4, err_msg=f"{name} at {(b, h, w)}")


@pytest.mark.parametrize("arch", ["resnet50", "mobilenetv2", "shufflenetv2"])
@pytest.mark.parametrize("attn", ATTNS)
def test_classifier_export_two_sizes(tmp_path, arch, attn):
    model = create_model(arch, attn=attn, num_classes=10).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path, ShapeProfile.make((64, 64), batch=2, dynamic=True), ["logits"], simplify=False)
    run_both(model, path, [(2, 64, 64), (1, 96, 80)], ["logits"])


@pytest.mark.parametrize("nms", ["host", "graph"])
def test_detector_export_two_sizes(tmp_path, nms):
    model = create_model("retinanet_tiny", num_classes=6).eval()
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
            n = int(ref[0].max())
            assert n > 0
            np.testing.assert_allclose(out[1][:, :n], ref[1][:, :n], rtol=1e-3, atol=1e-3)
            np.testing.assert_allclose(out[2][:, :n], ref[2][:, :n], atol=1e-5)
            np.testing.assert_array_equal(out[3][:, :n], ref[3][:, :n])


def test_resnet50_retinanet_exports(tmp_path):
    model = create_model("retinanet_resnet50", num_classes=3).eval()
    path = tmp_path / "r50.onnx"
    export_onnx(model, path, ShapeProfile.make((128, 128), dynamic=True), ["cls_logits", "box_deltas"], simplify=False)
    run_both(model, path, [(1, 128, 128), (1, 160, 96)], ["cls_logits", "box_deltas"])
