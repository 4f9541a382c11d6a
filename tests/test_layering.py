"""The package's imports point down the pipeline, form no cycle, and stay out of functions.

Parses every module of ``cat_deploy`` (``cat_deploy.plugins`` included) with ``ast``; nothing
is imported. Fails on:

* an import of a higher layer (``LAYERS``, bottom first), eager or through ``lazy_import``;
* a cycle among the modules' top-level imports;
* an ``import`` inside a function, unless of an optional heavy dependency (``OPTIONAL``);
  those go through ``cat_deploy.core.optional`` (``lazy_import``/``require``) anyway,
  which is the only module allowed to call ``importlib.import_module`` or ``__import__``
  (imports under ``if TYPE_CHECKING:`` never run and are not counted);
* a module of the deployment runtime that reaches PyTorch, torchvision, timm or onnx
  through its top-level imports (the runtime installs without them).
"""
import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "cat_deploy"

# Bottom first. A module may import its own layer and the layers below it.
LAYERS = [
    ["cat_deploy.config"],
    ["cat_deploy.core", "cat_deploy.paths", "cat_deploy.cli"],
    ["cat_deploy.data"],
    ["cat_deploy.layers"],
    ["cat_deploy.plugins"],
    ["cat_deploy.models"],
    ["cat_deploy.checkpoint"],
    ["cat_deploy.export"],
    ["cat_deploy.runtime"],
    ["cat_deploy.validate"],
    ["cat_deploy.serve"],
    ["cat_deploy.exporter", "cat_deploy.train", "cat_deploy.bench", "cat_deploy.visualize"],
]
OPTIONAL = {"tensorrt", "cuda", "triton", "modelopt", "av", "cv2", "onnxruntime_extensions"}
HEAVY = {"torch", "torchvision", "timm", "onnx", "onnxslim", "onnxscript", "triton", "tensorrt"}
TORCH_FREE = ["cat_deploy", "cat_deploy.config", "cat_deploy.core", "cat_deploy.paths", "cat_deploy.cli",
              "cat_deploy.runtime", "cat_deploy.data.image", "cat_deploy.data.transforms", "cat_deploy.data.coco_eval",
              "cat_deploy.data.coco_json", "cat_deploy.data.synthetic", "cat_deploy.serve"]
LAZY_CALLS = {"lazy_import", "require"}
HELPER = "cat_deploy.core.optional"


def _modules() -> dict[str, Path]:
    """Module name -> file, following the ``cat_deploy/plugins`` symlink like the import system does."""
    out = {}
    for folder, _, files in os.walk(ROOT / PACKAGE, followlinks=True):
        for f in files:
            if f.endswith(".py"):
                rel = (Path(folder) / f).relative_to(ROOT).with_suffix("")
                parts = list(rel.parts)
                if parts[-1] == "__init__":
                    parts.pop()
                out[".".join(parts)] = Path(folder) / f
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    return rank


def _resolve(module: str, node: ast.ImportFrom) -> str:
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    return node.module


def _targets(module: str, node) -> list[str]:
    """Modules an import statement loads (submodules named in ``from pkg import sub`` included)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    src = _resolve(module, node)
    subs = [f"{src}.{a.name}" for a in node.names if f"{src}.{a.name}" in MODULES]
    return subs + [src] if len(subs) < len(node.names) else subs


class _Scan(ast.NodeVisitor):
    def __init__(self, module: str):
        self.module, self.depth = module, 0
        self.eager, self.lazy, self.in_function, self.dynamic = [], [], [], []

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _import(self, node):
        for target in _targets(self.module, node):
            (self.in_function if self.depth else self.eager).append((target, node.lineno))

    visit_Import = visit_ImportFrom = _import

    def visit_If(self, node):
        test = node.test
        if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
            for child in node.orelse:  # the body runs for type checkers only
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Call(self, node):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in LAZY_CALLS and node.args and isinstance(node.args[0], ast.Constant):
            self.lazy.append((node.args[0].value, node.lineno))
        if name in ("import_module", "__import__"):
            self.dynamic.append(node.lineno)
        self.generic_visit(node)


def _scan() -> dict[str, _Scan]:
    scans = {}
    for module, path in MODULES.items():
        s = _Scan(module)
        s.visit(ast.parse(path.read_text(), str(path)))
        scans[module] = s
    return scans


SCANS = _scan()


def _internal(target: str) -> bool:
    return target == PACKAGE or target.startswith(PACKAGE + ".")


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m != PACKAGE and _layer(m) is None] == []


def test_imports_point_down():
    bad = []
    for module, s in SCANS.items():
        here = _layer(module)
        for target, line in s.eager + s.lazy + s.in_function:
            if not _internal(target) or target == PACKAGE:
                continue  # the root package only re-exports the bottom eagerly (checked below)
            if module == PACKAGE:
                if (target, line) in s.eager and _layer(target) > 1:
                    bad.append(f"{module}:{line} imports {target} eagerly: the root may only load config and core")
                continue
            if _layer(target) > here:
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} (layer {here}) imports {target} "
                           f"(layer {_layer(target)})")
    assert bad == [], "upward imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = {m: sorted({t for t, _ in s.eager if t in MODULES and t != m}) for m, s in SCANS.items()}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        for t in graph[m]:
            if state.get(t) == "open":
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_imports_inside_functions_are_optional_dependencies_only():
    bad = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {t} inside a function"
           for m, s in SCANS.items() for t, line in s.in_function if t.split(".")[0] not in OPTIONAL]
    bad += [f"{MODULES[m].relative_to(ROOT)}:{line} imports dynamically: use cat_deploy.core.optional.lazy_import"
            for m, s in SCANS.items() if m != HELPER for line in s.dynamic]
    assert bad == [], "\n".join(bad)


def test_deployment_runtime_never_reaches_pytorch():
    def closure(start):
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            todo += [t for t, _ in SCANS[m].eager if t in MODULES]
        return seen

    bad = []
    for module in MODULES:
        if module != PACKAGE and not any(module == p or module.startswith(p + ".") for p in TORCH_FREE[1:]):
            continue
        for dep in sorted(closure(module)):
            heavy = sorted({t.split(".")[0] for t, _ in SCANS[dep].eager} & HEAVY)
            if heavy:
                bad.append(f"{module} reaches {heavy} through {dep}")
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("planted, expected", [
    ("from ..validate.parity import summarize\n", "upward"),
    ("def f():\n    from ..core import errors\n", "inside a function"),
])
def test_the_checks_catch_a_planted_fault(planted, expected, monkeypatch):
    """Each check fails on a module that breaks it (run on a copy of the scan, nothing written)."""
    module = "cat_deploy.export.deploy"
    s = _Scan(module)
    s.visit(ast.parse(MODULES[module].read_text() + planted))
    monkeypatch.setitem(SCANS, module, s)
    check = test_imports_point_down if expected == "upward" else test_imports_inside_functions_are_optional_dependencies_only
    with pytest.raises(AssertionError, match=expected if expected != "upward" else "layer 7"):
        check()
