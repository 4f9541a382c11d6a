"""Planted faults: how far the parity gate can be trusted.

One CAT-sensitive detector (the demo weights with ``exercise_cat``) is exported once. Each test
plants one fault into a copy of the ONNX file (graph surgery, in one CAT module only: onnxslim
shares identical constants between modules, so the planted node gets a constant of its own) or
of its sidecar, runs ``python -m cat_deploy.validate --per-module`` on it and checks that it
fails (exit status 1) and names the fault: the CAT module for graph faults, the field for
sidecar faults. The unplanted copy must pass the same command, or a "caught" fault would mean
nothing. README reports the count as "faults caught: k/8".
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from cat_weights import assert_cat_reaches_output
from onnx import TensorProto, helper, numpy_helper

from cat_deploy import load_model, save_checkpoint
from cat_deploy.layers import cat_module_names
from cat_deploy.exporter import ExportOptions, run_export
from cat_deploy.export.precision import node_module_map
from cat_deploy.models import exercise_cat
from cat_deploy.validate.__main__ import main as validate_main
from cat_deploy.validate.parity import MIN_MATCHED_DETECTIONS

ROOT = Path(__file__).resolve().parents[2]
VAL_IMAGES = 12  # with the 6 samples: about 30 detections at conf 0.25, above MIN_MATCHED_DETECTIONS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def artefact(tmp_path_factory):
    """(checkpoint, folder with cat.onnx + sidecar, target CAT module, its exterior factors)."""
    tmp = tmp_path_factory.mktemp("planted")
    model = exercise_cat(load_model(ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"), seed=0)
    assert_cat_reaches_output(model, torch.randn(1, 3, *model.config.input_size))
    ckpt = save_checkpoint(model, tmp / "det.pth")
    run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp / "export"), validate=False), log=lambda s: None)
    names = cat_module_names(model)
    target = names[len(names) // 2]
    return ckpt, tmp / "export", target, model.state_dict()[f"{target}.exterior_factors"].double().numpy()


def validate(ckpt, folder: Path, capsys) -> tuple[int, dict, str]:
    report = folder / "report.json"
    code = validate_main(["--ckpt", str(ckpt), "--artefact", str(folder / "cat.onnx"), "--per-module",
                          "--val-images", str(VAL_IMAGES), "--device", "cpu", "--json", str(report)])
    out = capsys.readouterr().out
    return code, json.loads(report.read_text()), out


# --------------------------------------------------------------------------- graph surgery, one module


def _const(graph, name):
    init = next((i for i in graph.initializer if i.name == name), None)
    return None if init is None else numpy_helper.to_array(init)


def _own_constant(graph, node, index: int, value: np.ndarray, tag: str) -> None:
    name = f"planted_{tag}_{len(graph.initializer)}"
    graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
    node.input[index] = name


def _constant_inputs(graph, nodes, op: str, match):
    """(node, input index, value) of the constant inputs of ``op`` nodes for which ``match(value)``."""
    for n in nodes:
        if n.op_type == op:
            for i, name in enumerate(n.input):
                value = _const(graph, name)
                if value is not None and match(value):
                    yield n, i, value


def gap_only(graph, nodes, exterior):
    """Both pooled stacks (channel, spatial) carry GAP three times instead of GAP, GMP, GEP."""
    stacks = [n for n in nodes if n.op_type == "Concat" and len(n.input) == 3]
    for n in stacks:
        n.input[1] = n.input[2] = n.input[0]
    return len(stacks)


def spatial_sign(graph, nodes, exterior):
    """-S_avg becomes +S_avg: the sign vector (-1, 1, 1) of the spatial mix becomes (1, 1, 1)."""
    hits = list(_constant_inputs(graph, nodes, "Mul", lambda v: v.size == 3 and np.allclose(v.ravel(), [-1, 1, 1])))
    for n, i, v in hits:
        _own_constant(graph, n, i, np.abs(v), "sign")
    return len(hits)


def minmax_eps(graph, nodes, exterior):
    """The min-max normalisation's eps 1e-3 becomes 1e-1 (x100), for both entropy maps."""
    hits = list(_constant_inputs(graph, nodes, "Add", lambda v: v.size == 1 and np.isclose(float(v), 1e-3)))
    for n, i, v in hits:
        _own_constant(graph, n, i, v * 100, "eps")
    return len(hits)


def box_filter(graph, nodes, exterior):
    """The Gaussian taps of the GMP pre-filter (k x 1 and 1 x k depthwise convs) become a box filter."""
    def depthwise_1d(v):
        return v.ndim == 4 and v.shape[1] == 1 and sorted(v.shape[2:])[0] == 1 and max(v.shape[2:]) > 1
    hits = list(_constant_inputs(graph, nodes, "Conv", depthwise_1d))
    for n, i, v in hits:
        _own_constant(graph, n, i, np.full_like(v, 1.0 / max(v.shape[2:])), "box")
    return len(hits)


def exterior_softmax(graph, nodes, exterior):
    """(C_w, S_w) used raw: the constant-folded softmax weights are replaced by the factors themselves."""
    weights = np.exp(exterior) / np.exp(exterior).sum()
    hits = list(_constant_inputs(graph, nodes, "Mul", lambda v: v.size == 1 and np.isclose(weights, float(v),
                                                                                           rtol=1e-5).any()))
    for n, i, v in hits:
        _own_constant(graph, n, i, v * 0 + exterior[np.argmin(np.abs(weights - float(v)))], "exterior")
    return len(hits)


def fp16_reduction(graph, nodes, exterior):
    """The sum of exponentials of one GEP (s = sum e^z) in FP16: its input and its result rounded to FP16."""
    producer = {o: n for n in graph.node for o in n.output}
    red = next(n for n in nodes if n.op_type == "ReduceSum" and producer[n.input[0]].op_type == "Exp")
    src, out = red.input[0], red.output[0]
    red.input[0], red.output[0] = "planted_fp16_in", "planted_fp16_sum"
    casts = [helper.make_node("Cast", [src], ["planted_fp16_in16"], to=TensorProto.FLOAT16, name="planted_c1"),
             helper.make_node("Cast", ["planted_fp16_in16"], ["planted_fp16_in"], to=TensorProto.FLOAT, name="planted_c2"),
             helper.make_node("Cast", ["planted_fp16_sum"], ["planted_fp16_sum16"], to=TensorProto.FLOAT16,
                              name="planted_c3"),
             helper.make_node("Cast", ["planted_fp16_sum16"], [out], to=TensorProto.FLOAT, name="planted_c4")]
    at = list(graph.node).index(red)
    for node in reversed(casts[:2]):
        graph.node.insert(at, node)
    for node in reversed(casts[2:]):
        graph.node.insert(at + 3, node)
    return 1


GRAPH_FAULTS = {"pooling swapped for GAP only": gap_only, "spatial sign flipped (+S_avg)": spatial_sign,
                "min-max eps x100": minmax_eps, "Gaussian taps replaced by a box filter": box_filter,
                "exterior softmax dropped": exterior_softmax, "FP16 in a GEP reduction": fp16_reduction}


def _swap_mean_std(side):
    side["normalize"]["mean"], side["normalize"]["std"] = side["normalize"]["std"], side["normalize"]["mean"]


def _letterbox_off(side):
    side["letterbox"] = False


SIDECAR_FAULTS = {"sidecar mean/std swapped": (_swap_mean_std, ["normalize.mean", "normalize.std"]),
                  "sidecar letterbox off": (_letterbox_off, ["letterbox"])}


# --------------------------------------------------------------------------- tests


def test_unplanted_artefact_passes(artefact, tmp_path, capsys):
    ckpt, src, _, _ = artefact
    shutil.copytree(src, tmp_path / "a")
    code, report, out = validate(ckpt, tmp_path / "a", capsys)
    assert code == 0 and "parity: PASSED" in out, out
    assert report["detections"]["matched"] >= MIN_MATCHED_DETECTIONS
    assert report["per_module"]["first_divergent"] is None and len(report["per_module"]["modules"]) == 16
    assert all(len(r["statistics"]) == 6 for r in report["per_module"]["modules"])


@pytest.mark.parametrize("fault", list(GRAPH_FAULTS))
def test_graph_fault_caught_and_module_named(artefact, fault, tmp_path, capsys):
    ckpt, src, target, exterior = artefact
    shutil.copytree(src, tmp_path / "a")
    model = onnx.load(str(tmp_path / "a" / "cat.onnx"))
    owner = node_module_map(model.graph, [target])
    planted = GRAPH_FAULTS[fault](model.graph, [n for n in model.graph.node if n.name in owner], exterior)
    assert planted >= 1, f"nothing planted for {fault!r}: the graph no longer has the pattern"
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "a" / "cat.onnx"))
    code, report, out = validate(ckpt, tmp_path / "a", capsys)
    assert code == 1 and "parity: FAILED" in out, out
    failing = [r["module"] for r in report["per_module"]["modules"] if not r["passed"]]
    assert failing == [target], failing  # module-local comparisons: the faulty module and no other
    assert f"CAT module {target} diverges first" in out


@pytest.mark.parametrize("fault", list(SIDECAR_FAULTS))
def test_sidecar_fault_caught_and_field_named(artefact, fault, tmp_path, capsys):
    ckpt, src, _, _ = artefact
    shutil.copytree(src, tmp_path / "a")
    edit, fields = SIDECAR_FAULTS[fault]
    side_path = tmp_path / "a" / "cat.onnx.json"
    side = json.loads(side_path.read_text())
    edit(side)
    side_path.write_text(json.dumps(side))
    code, report, out = validate(ckpt, tmp_path / "a", capsys)
    assert code == 1 and "parity: FAILED" in out, out
    assert not report["sidecar"]["passed"]
    for field in fields:
        assert field in report["sidecar"]["reason"] and f"FAIL sidecar: " in out


def test_command_line_exit_status(artefact, tmp_path):
    """The same through ``python -m cat_deploy.validate`` in a fresh process: exit status 1, field named."""
    ckpt, src, _, _ = artefact
    shutil.copytree(src, tmp_path / "a")
    side_path = tmp_path / "a" / "cat.onnx.json"
    side = json.loads(side_path.read_text())
    _letterbox_off(side)
    side_path.write_text(json.dumps(side))
    r = subprocess.run([sys.executable, "-m", "cat_deploy.validate", "--ckpt", str(ckpt), "--artefact",
                        str(tmp_path / "a" / "cat.onnx"), "--val-images", str(VAL_IMAGES), "--device", "cpu"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "FAIL sidecar: letterbox is False in the sidecar" in r.stdout, r.stdout + r.stderr
