import os

import pytest
import torch

from cat_deploy import CheckpointError, load_model, save_checkpoint
from cat_deploy.models import create_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    model = create_model("retinanet_tiny", num_classes=3, class_names=("a", "b", "c"), cat=dict(fusion="eq1"))
    path = tmp_path_factory.mktemp("ckpt") / "m.pth"
    save_checkpoint(model, path, meta={"map50": 0.5})
    return model.eval(), path


def test_round_trip(ckpt):
    model, path = ckpt
    loaded = load_model(path)
    assert not loaded.training and loaded.config == model.config
    assert loaded.config.cat.fusion == "eq1" and loaded.checkpoint_meta["map50"] == 0.5
    x = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x)):
            assert torch.equal(a, b)


def test_gep_override(ckpt):
    _, path = ckpt
    m = load_model(path, gep="reference")
    assert {c.gep for c in m.modules() if hasattr(c, "gep")} == {"reference"}


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cat_deploy_pwned",))


def _bad_files(tmp_path, good):
    data = good.read_bytes()
    files = {}
    files["truncated"] = tmp_path / "trunc.pth"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["pickle that runs code"] = tmp_path / "evil.pth"
    torch.save({"x": RunsCode()}, files["pickle that runs code"])
    files["other format"] = tmp_path / "notes.pth"
    files["other format"].write_text("not a checkpoint at all\n")
    files["empty"] = tmp_path / "empty.pth"
    files["empty"].write_bytes(b"")
    files["bare state_dict"] = tmp_path / "bare.pth"
    torch.save(create_model("retinanet_tiny", num_classes=3).state_dict(), files["bare state_dict"])
    ck = torch.load(good, weights_only=True)
    ck["config"]["width_mult"] = 1.0
    files["config/weights mismatch (shapes)"] = tmp_path / "mismatch.pth"
    torch.save(ck, files["config/weights mismatch (shapes)"])
    ck = torch.load(good, weights_only=True)
    ck["config"]["cat"]["channel_mlp"] = False
    files["config/weights mismatch (keys)"] = tmp_path / "mismatch2.pth"
    torch.save(ck, files["config/weights mismatch (keys)"])
    files["missing"] = tmp_path / "missing.pth"
    return files


def test_bad_checkpoints_one_line_errors(ckpt, tmp_path):
    _, good = ckpt
    if os.path.exists("/tmp/cat_deploy_pwned"):
        os.unlink("/tmp/cat_deploy_pwned")
    for case, path in _bad_files(tmp_path, good).items():
        with pytest.raises(CheckpointError) as e:
            load_model(path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg, (case, msg)
    assert not os.path.exists("/tmp/cat_deploy_pwned"), "unpickling executed code"


def test_save_is_atomic(ckpt, tmp_path):
    model, _ = ckpt
    path = tmp_path / "m.pth"
    save_checkpoint(model, path)
    before = path.read_bytes()

    with pytest.raises(Exception):
        save_checkpoint(model, path, meta={"unpicklable": lambda: 0})  # fails half-way through torch.save
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pth"]
