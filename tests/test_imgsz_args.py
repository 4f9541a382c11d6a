"""--imgsz, --min-imgsz, --max-imgsz (cat_deploy.cli.add_imgsz_argument) take one value (a square) or two (H W) in every command that takes a size."""
import importlib.util
from pathlib import Path

import pytest

from cat_deploy import bench

ROOT = Path(__file__).resolve().parents[1]


def _cli(name):
    spec = importlib.util.spec_from_file_location(f"{name}_cli", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


export_cli, train_cli = _cli("export"), _cli("train")


def test_export_one_or_two_values():
    o = export_cli.parse_args(["--ckpt", "m.pth", "--imgsz", "224"])
    assert o.imgsz == (224, 224) and o.min_imgsz is None and o.max_imgsz is None
    o = export_cli.parse_args(["--ckpt", "m.pth", "--dynamic", "--imgsz", "192", "640", "--min-imgsz", "96",
                               "--max-imgsz", "384", "1280"])
    assert (o.imgsz, o.min_imgsz, o.max_imgsz) == ((192, 640), (96, 96), (384, 1280))


def test_train_and_bench_one_value():
    assert train_cli.parse_args(["--imgsz", "320"]).input_size == (320, 320)
    assert train_cli.parse_args(["--imgsz", "192", "640"]).input_size == (192, 640)
    assert bench.parse_args(["--imgsz", "160"]).imgsz == (160, 160)
    assert bench.parse_args([]).imgsz is None


def test_three_values_refused(capsys):
    with pytest.raises(SystemExit) as e:
        export_cli.parse_args(["--ckpt", "m.pth", "--imgsz", "1", "2", "3"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "argument --imgsz" in err[-1] and "got 3 values" in err[-1] and "Traceback" not in "\n".join(err)
