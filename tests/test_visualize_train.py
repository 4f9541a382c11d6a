"""The paper's pictures render; a short training run lowers the loss and resumes."""
import json

import pytest
import torch

from cat_deploy import load_model, save_checkpoint
from cat_deploy.data.synthetic import generate_dataset
from cat_deploy.models import create_model
from cat_deploy.train import TrainConfig, train
from cat_deploy.visualize import attention_maps_by_stage, colla_factors, render


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    train_ann = generate_dataset(root / "train", 16, size=(320, 96), seed=0)
    val_ann = generate_dataset(root / "val", 4, size=(320, 96), seed=1)
    return train_ann, val_ann


def test_attention_maps_one_per_stage():
    model = create_model("retinanet_tiny", num_classes=3).eval()
    stages = attention_maps_by_stage(model, torch.randn(1, 3, 96, 320))
    assert [m.shape for _, m in stages] == [(3, 12, 40), (3, 6, 20), (3, 3, 10)]
    rows = colla_factors(model)
    assert len(rows) == 16 and all(abs(r["Cw"] - 0.5) < 1e-6 for r in rows)


def test_render_writes_pngs(tmp_path, tiny_data):
    ckpt = tmp_path / "m.pth"
    save_checkpoint(create_model("retinanet_tiny", num_classes=6, input_size=(96, 320)), ckpt)
    image = next((tiny_data[1].parent / "images").iterdir())
    files = render(str(ckpt), str(image), tmp_path / "vis")
    for f in files[:2]:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 10_000
    assert len(json.loads(files[2].read_text())) == 16


def test_short_training_lowers_loss_and_resumes(tmp_path, tiny_data):
    train_ann, val_ann = tiny_data
    cfg = TrainConfig(train_ann=str(train_ann), val_ann=str(val_ann), input_size=(96, 320), epochs=4, batch_size=8,
                      lr=2e-3, warmup_iters=1, workers=0, out=str(tmp_path / "run"))
    train(TrainConfig(**{**cfg.__dict__, "epochs": 2}), log=lambda s: None)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(hist) == 2
    train(TrainConfig(**{**cfg.__dict__, "resume": True}), log=lambda s: None)  # continues to epoch 4
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    loss = [h["loss_cls"] + h["loss_box"] for h in hist]
    assert loss[-1] < loss[0]
    model = load_model(tmp_path / "run" / "best.pth")
    assert model.config.class_names == ("car", "truck", "pedestrian", "cyclist", "traffic_light", "traffic_sign")
