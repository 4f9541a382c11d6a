"""Every command: documented exit codes, one line for an unexpected error, --debug for its trace (issue 14, case 6).

0 ok, 1 a check failed (parity), 2 bad input, 3 missing dependency or backend, 4 internal error, 130 interrupted.
"""
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_cli_codes", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# command -> (module, attribute the command calls to do its work, argv, program name in messages)
COMMANDS = {
    "export": (lambda: _script("export"), "run_export", ["--ckpt", "m.pth"], "export.py"),
    "infer": (lambda: _script("infer"), "run_detection", ["--engine", "m.onnx", "--images", "imgs"], "infer.py"),
    "train": (lambda: _script("train"), "train", ["--synthetic", "data"], "train.py"),
    "validate": (lambda: importlib.import_module("cat_deploy.validate.__main__"), "load_model",
                 ["--ckpt", "m.pth", "--artefact", "m.onnx"], "cat_deploy.validate"),
    "visualize": (lambda: importlib.import_module("cat_deploy.visualize"), "render",
                  ["--ckpt", "m.pth", "--image", "x.jpg"], "cat_deploy.visualize"),
    "bench": (lambda: importlib.import_module("cat_deploy.bench"), "run", ["--quick"], "cat_deploy.bench"),
}


def _raiser(exc):
    def f(*a, **k):
        raise exc
    return f


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("exc, code, words", [
    (RuntimeError("boom in the middle"), 4, ["internal error", "boom in the middle", "--debug"]),
    (ModuleNotFoundError("No module named 'onnxslim'", name="onnxslim"), 3, ["onnxslim", "pip install"]),
    (KeyboardInterrupt(), 130, ["interrupted"]),
], ids=["internal", "missing-dependency", "interrupt"])
def test_unexpected_errors_get_one_line_and_their_own_exit_code(command, exc, code, words, monkeypatch, capsys):
    load, attr, argv, prog = COMMANDS[command]
    module = load()
    monkeypatch.setattr(module, attr, _raiser(exc))
    try:
        rc = module.main(list(argv))
    except BaseException as e:  # noqa: B036 - a KeyboardInterrupt escaping main() must fail the test, not end the run
        pytest.fail(f"{type(e).__name__} escaped main()")
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert "Traceback" not in err and err.count("\n") == 0 and err.startswith(prog), err
    for w in words:
        assert w in err, err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_debug_shows_the_trace(command, monkeypatch):
    load, attr, argv, _ = COMMANDS[command]
    module = load()
    monkeypatch.setattr(module, attr, _raiser(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        module.main(list(argv) + ["--debug"])


def test_bench_exits_1_when_a_variant_fails_parity(monkeypatch, capsys):
    bench = importlib.import_module("cat_deploy.bench")
    report = {"variants": {"detector/cat-stable": {"parity": {"out0": {"passed": False}}}}}
    monkeypatch.setattr(bench, "run", lambda *a, **k: report)
    monkeypatch.setattr(bench, "markdown", lambda r: "table")
    assert bench.main(["--quick"]) == 1
    assert "parity" in capsys.readouterr().err
