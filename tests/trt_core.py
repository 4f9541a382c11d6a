"""NVIDIA's real ``tensorrt`` Python code on a stand-in for its compiled core, and the API names of each version.

TensorRT cannot be installed here, but its bindings wheels ship the Python half of the API
as source: ``tensorrt/__init__.py`` and the whole quickly-deployable-plugin front end
``tensorrt/plugin/*`` (``register``, ``autotune``, ``aot_impl``, ``KernelLaunchParams``,
``SymIntExprs``, the AOT plugin class TensorRT calls back into). ``tests/trt_bindings/<version>/``
keeps those files for TensorRT 10.9 and 11.4, plus ``names.txt``: every identifier string of
that version's compiled ``tensorrt.so`` (see ``tests/trt_bindings/README.md``).

:func:`load_tensorrt` imports NVIDIA's files as the package ``tensorrt`` on top of
:func:`make_core`, a stand-in for the compiled module ``tensorrt.tensorrt`` that implements
the few documented behaviours the front end relies on (enums, plugin fields, the plugin
registry, symbolic dimension expressions). Every name the stand-in defines must exist in that
version's ``names.txt`` (checked when it is built), so it cannot invent API.

:func:`build_plugin_layer` then does to a registered plugin what TensorRT's ONNX parser and
builder do with an ONNX node (sources: onnx-tensorrt ``onnxOpImporters.cpp``
``FallbackPluginImporter``/``loadFields``/``copyField`` and ``importerUtils.cpp`` ``createPlugin``;
the call order of ``IPluginV3QuickBuild``/``IPluginV3QuickAOTBuild`` in NVIDIA's
``_plugin_class.py``): find the creator by (op_type, plugin_version "1", plugin_namespace),
pass only the creator's declared fields (INT -> one int32, STRING -> bytes plus a trailing
NUL counted in the length), create it with ``STRICT_AOT`` when the node says ``aot=1``, then
output types, symbolic output shapes, format combinations, tactic, launch parameters, kernel.
"""
from __future__ import annotations

import enum
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

BINDINGS = Path(__file__).resolve().parent / "trt_bindings"
FRONT_END_VERSIONS = ("10.9.0.34", "11.4.0.106")  # versions whose Python files are kept
ALL_VERSIONS = ("10.9.0.34", "10.16.1.11", "11.4.0.106")  # versions whose compiled names are kept


# ----------------------------------------------------------------------------- names of the compiled module


@lru_cache(maxsize=None)
def so_names(version: str) -> frozenset[str]:
    """Identifier strings of ``tensorrt.so`` of ``version``, plus the names NVIDIA's Python ``__init__`` defines."""
    names = set((BINDINGS / version / "names.txt").read_text().split())
    init = BINDINGS / version / "tensorrt" / "__init__.py"
    if init.is_file():
        import ast

        tree = ast.parse(init.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
                names.update(t.attr for t in node.targets if isinstance(t, ast.Attribute))
    return frozenset(names)


@lru_cache(maxsize=None)
def _suffixes(version: str) -> frozenset[str]:
    out = set()
    for n in so_names(version):
        out.update(n[i:] for i in range(len(n)))
    return frozenset(out)


def has_name(version: str, name: str) -> bool:
    """Whether ``name`` is a string of that version's bindings.

    The linker merges a string literal into the tail of a longer one (``"serialize"`` is
    stored as the end of ``"get_fields_to_serialize"``), so a name counts when some string
    ends with it.
    """
    return name in _suffixes(version)


# ----------------------------------------------------------------------------- symbolic dimensions


class _Expr:
    """``trt.IDimensionExpr`` stand-in: a constant or a function of named symbols."""

    def __init__(self, fn: Callable[[dict], int], const: Optional[int] = None, text: str = "?"):
        self._fn, self._const, self._text = fn, const, text

    def is_constant(self) -> bool:
        return self._const is not None

    def get_constant_value(self) -> int:
        if self._const is None:
            raise RuntimeError(f"{self._text} is not a build-time constant")
        return self._const

    def is_size_tensor(self) -> bool:
        return False

    def evaluate(self, env: dict[str, int]) -> int:
        """The value for concrete symbol values (what TensorRT computes per input shape at run time)."""
        return int(self._fn(env))

    def __repr__(self):
        return f"IDimensionExpr({self._text})"


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


_OPS = {
    "SUM": lambda a, b: a + b, "PROD": lambda a, b: a * b, "MAX": max, "MIN": min, "SUB": lambda a, b: a - b,
    "EQUAL": lambda a, b: int(a == b), "LESS": lambda a, b: int(a < b), "FLOOR_DIV": lambda a, b: a // b,
    "CEIL_DIV": _cdiv,
}


class _ExprBuilder:
    """``trt.IExprBuilder`` stand-in: constants, and binary operations folded when both sides are constant."""

    def constant(self, value: int) -> _Expr:
        return _Expr(lambda env: value, int(value), str(value))

    def operation(self, op, a: _Expr, b: _Expr) -> _Expr:
        f = _OPS[op.name]
        if a.is_constant() and b.is_constant():
            return self.constant(f(a.get_constant_value(), b.get_constant_value()))
        return _Expr(lambda env: f(a.evaluate(env), b.evaluate(env)), None, f"{op.name}({a._text}, {b._text})")

    def declare_size_tensor(self, *args):
        raise NotImplementedError("size tensors are not used by cat-deploy's plugin")


def symbol(name: str) -> _Expr:
    """A run-time dimension (dynamic batch, height, width): evaluated from ``env[name]``."""
    return _Expr(lambda env: env[name], None, name)


# ----------------------------------------------------------------------------- the compiled-core stand-in


def _enum(name: str, members: Sequence[str]) -> type:
    return enum.IntEnum(name, [(m, i) for i, m in enumerate(members)])


class _Base:
    """Base of the pybind11 classes that Python code subclasses (their ``__init__`` takes no arguments)."""

    def __init__(self, *args, **kwargs):
        pass


def make_core(version: str) -> types.ModuleType:
    """The stand-in for ``tensorrt.tensorrt`` of ``version``; raises if it defines a name the real one lacks."""
    major = int(version.split(".")[0])
    core = types.ModuleType("tensorrt.tensorrt")
    dtypes = ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8", "BF16", "INT64", "INT4"]
    if major >= 11 or version.startswith("10.16"):
        dtypes.append("FP4")
    DataType = _enum("DataType", dtypes)
    Severity = _enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

    class ILogger(_Base):
        pass

    ILogger.Severity = Severity

    class Logger(ILogger):
        def __init__(self, min_severity=Severity.WARNING):
            self.min_severity, self.messages = min_severity, []

        def log(self, severity, msg):
            self.messages.append((severity, msg))

    class Dims(tuple):
        MAX_DIMS = 8

        def __new__(cls, shape=()):
            return super().__new__(cls, (shape,) * 0 if isinstance(shape, int) else shape)

    class DimsExprs(list):
        def __init__(self, n: int = 0):
            super().__init__([None] * n)

    class PluginTensorDesc(_Base):
        def __init__(self):
            self.dims, self.type, self.format, self.scale = Dims(), DataType.FLOAT, TensorFormat.LINEAR, 1.0

    class DynamicPluginTensorDesc(_Base):
        def __init__(self):
            self.desc, self.min, self.max, self.opt = PluginTensorDesc(), Dims(), Dims(), Dims()

    PluginFieldType = _enum("PluginFieldType", ["FLOAT16", "FLOAT32", "FLOAT64", "INT8", "INT16", "INT32", "CHAR",
                                                "DIMS", "UNKNOWN", "BF16", "INT64", "FP8"])
    _np_of = {PluginFieldType.INT32: np.int32, PluginFieldType.INT8: np.int8, PluginFieldType.INT16: np.int16,
              PluginFieldType.FLOAT32: np.float32, PluginFieldType.FLOAT64: np.float64, PluginFieldType.CHAR: np.int8}

    class PluginField(_Base):
        """Reading ``data`` gives ``py::array(length, ptr)`` of the field type, as NVIDIA's pyPlugin.cpp does."""

        def __init__(self, name: str = "", data=None, type=PluginFieldType.UNKNOWN):
            self.name, self.type = name, type
            raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data or b"")
            width = np.dtype(_np_of.get(type, np.int8)).itemsize
            self._raw, self.size = raw, len(raw) // width

        @property
        def data(self) -> np.ndarray:
            return np.frombuffer(self._raw, dtype=_np_of.get(self.type, np.int8))[: self.size].copy()

    class PluginFieldCollection(list):
        pass

    class IPluginRegistry(_Base):
        def __init__(self):
            self.creators = {}

        def register_creator(self, creator, plugin_namespace=""):
            self.creators[(creator.name, creator.plugin_version, plugin_namespace)] = creator
            return True

        def get_creator(self, name, version, plugin_namespace=""):
            return self.creators.get((name, version, plugin_namespace))

    registry = IPluginRegistry()

    class ISymExpr(_Base):
        pass

    builder_classes = _builder_classes(version, DataType)
    TensorFormat = _enum("TensorFormat", ["LINEAR", "CHW2", "HWC8", "CHW4", "CHW16", "CHW32", "DHWC8", "CDHW32",
                                          "HWC", "DLA_LINEAR", "DLA_HWC4", "HWC16", "DHWC"])
    names = {
        "DataType": DataType, "ILogger": ILogger, "Logger": Logger, "Dims": Dims, "DimsExprs": DimsExprs,
        "PluginTensorDesc": PluginTensorDesc, "DynamicPluginTensorDesc": DynamicPluginTensorDesc,
        "PluginFieldType": PluginFieldType, "PluginField": PluginField,
        "PluginFieldCollection": PluginFieldCollection, "IPluginRegistry": IPluginRegistry,
        "get_plugin_registry": lambda: registry, "ISymExpr": ISymExpr, "TensorFormat": TensorFormat,
        "IDimensionExpr": _Expr, "IExprBuilder": _ExprBuilder,
        "DimensionOperation": _enum("DimensionOperation", list(_OPS)),
        "QuickPluginCreationRequest": _enum("QuickPluginCreationRequest",
                                            ["UNKNOWN", "PREFER_JIT", "PREFER_AOT", "STRICT_JIT", "STRICT_AOT"]),
        "TensorRTPhase": _enum("TensorRTPhase", ["BUILD", "RUNTIME"]),
        "PluginArgType": _enum("PluginArgType", ["INT"]),
        "PluginArgDataType": _enum("PluginArgDataType", ["INT8", "INT16", "INT32"]),
        "float32": DataType.FLOAT, "float16": DataType.HALF, "bfloat16": DataType.BF16, "int8": DataType.INT8,
        "int32": DataType.INT32, "int64": DataType.INT64, "bool": DataType.BOOL, "uint8": DataType.UINT8,
        "fp8": DataType.FP8, "int4": DataType.INT4,
    }
    if "FP4" in DataType.__members__:
        names["fp4"] = DataType.FP4
    for cls in ("ITensor", "IPluginV3", "IPluginV3QuickCore", "IPluginV3QuickBuild",
                "IPluginV3QuickRuntime", "IPluginV3QuickAOTBuild", "IPluginCreatorV3Quick"):
        names[cls] = type(cls, (_Base,), {})
    names.update(builder_classes)
    missing = [n for n in names if not has_name(version, n)]
    missing += [f"{n}.{a}" for n, v in builder_classes.items() if isinstance(v, type)
                for a in public_attrs(v) if not has_name(version, a)]
    missing += [f"{n}.{m}" for n, v in names.items() if isinstance(v, type) and issubclass(v, enum.Enum)
                for m in v.__members__ if not has_name(version, m)]
    if missing:
        raise AssertionError(f"the stand-in for TensorRT {version} defines names its bindings lack: {missing}")
    for n, v in names.items():
        setattr(core, n, v)
    core.__all__ = list(names)
    return core


def public_attrs(cls: type) -> list[str]:
    """Public names a stand-in class defines itself (methods, properties, class attributes)."""
    own = set()
    for klass in cls.__mro__:
        if klass in (object, _Base) or klass.__module__ != __name__:
            continue
        own.update(n for n in vars(klass) if not n.startswith("_"))
    return sorted(own)


_BUILDER_FLAGS = ["FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
                  "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                  "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8",
                  "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "WEIGHTLESS", "STRIP_PLAN",
                  "REFIT_IDENTICAL", "WEIGHT_STREAMING", "INT4", "REFIT_INDIVIDUAL", "STRICT_NANS", "MONITOR_MEMORY",
                  "FP4", "EDITABLE_TIMING_CACHE"]
_NETWORK_FLAGS = ["EXPLICIT_BATCH", "STRONGLY_TYPED", "PREFER_AOT_PYTHON_PLUGINS", "PREFER_JIT_PYTHON_PLUGINS"]
DEVICE = "stand-in GPU"  # what a timing cache records; a cache made "on another device" carries another tag


def _builder_classes(version: str, DataType) -> dict[str, Any]:
    """Builder, config, parser, timing cache and runtime stand-ins, recording what the code under test asks for.

    Enum members are the documented superset filtered by the version's ``names.txt``: 11.x
    has no ``BuilderFlag.FP16`` because its bindings have no such name. Timing caches
    follow the documented contract: ``set_timing_cache`` returns ``False`` for a cache made
    on another device (unless ``ignore_mismatch``), after which ``get_timing_cache()`` is None.
    """
    BuilderFlag = enum.IntEnum("BuilderFlag", [(m, i) for i, m in enumerate(_BUILDER_FLAGS) if has_name(version, m)])
    NetworkDefinitionCreationFlag = enum.IntEnum(
        "NetworkDefinitionCreationFlag", [(m, i) for i, m in enumerate(_NETWORK_FLAGS) if has_name(version, m)])
    MemoryPoolType = _enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                              "TACTIC_DRAM", "TACTIC_SHARED_MEMORY"])
    HardwareCompatibilityLevel = _enum("HardwareCompatibilityLevel", ["NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"])
    TensorIOMode = _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])

    class IHostMemory(bytes):
        pass

    class ITimingCache(_Base):
        def __init__(self, device: str, entries: int):
            self.device, self.entries = device, entries

        def serialize(self) -> IHostMemory:
            return IHostMemory(f"CACHE|{self.device}|{self.entries}".encode())

    class IOptimizationProfile(_Base):
        def __init__(self):
            self.shapes = {}

        def set_shape(self, input, min, opt, max):
            self.shapes[input] = (tuple(min), tuple(opt), tuple(max))

    class IBuilderConfig(_Base):
        def __init__(self):
            self.flags, self.pools, self.profiles = set(), {}, []
            self.hardware_compatibility_level = HardwareCompatibilityLevel.NONE
            self._cache, self.lose_cache = None, False
            self.flags.add(BuilderFlag.TF32)  # on by default (TensorRT docs)

        def set_flag(self, flag):
            self.flags.add(flag)

        def clear_flag(self, flag):
            self.flags.discard(flag)

        def get_flag(self, flag) -> bool:
            return flag in self.flags

        def set_memory_pool_limit(self, pool, pool_size):
            self.pools[pool] = int(pool_size)

        def add_optimization_profile(self, profile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, serialized_timing_cache) -> ITimingCache:
            blob = bytes(serialized_timing_cache)
            if not blob:
                return ITimingCache(DEVICE, 0)
            _, device, entries = blob.decode().split("|")
            return ITimingCache(device, int(entries))

        def set_timing_cache(self, cache, ignore_mismatch) -> bool:
            if cache.device != DEVICE and not ignore_mismatch:
                self._cache = None
                return False
            self._cache = cache
            return True

        def get_timing_cache(self):
            return None if self.lose_cache else self._cache

    class INetworkDefinition(_Base):
        def __init__(self, flags: int):
            self.flags = flags

    class OnnxParser(_Base):
        def __init__(self, network, logger):
            self.network, self.parsed, self.num_errors = network, None, 0

        def parse_from_file(self, model) -> bool:
            self.parsed = model
            return Path(model).is_file()

        def get_error(self, index):
            return "stand-in parser error"

    class Builder(_Base):
        _built: list = []

        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            Builder._built.append((network, config))
            if config._cache is not None:
                config._cache.entries += 1
            return IHostMemory(b"plan")

    class Runtime(_Base):
        _plans: dict = {}  # serialized plan -> ICudaEngine factory (set by a test)

        def __init__(self, logger):
            self.logger, self.engine_host_code_allowed = logger, False

        def deserialize_cuda_engine(self, serialized_engine):
            make = Runtime._plans.get(bytes(serialized_engine))
            return make() if make else None

    return {
        "BuilderFlag": BuilderFlag, "NetworkDefinitionCreationFlag": NetworkDefinitionCreationFlag,
        "MemoryPoolType": MemoryPoolType, "HardwareCompatibilityLevel": HardwareCompatibilityLevel,
        "TensorIOMode": TensorIOMode, "IHostMemory": IHostMemory, "ITimingCache": ITimingCache,
        "IOptimizationProfile": IOptimizationProfile, "IBuilderConfig": IBuilderConfig,
        "INetworkDefinition": INetworkDefinition, "OnnxParser": OnnxParser, "Builder": Builder, "Runtime": Runtime,
        "ICudaEngine": type("ICudaEngine", (_Base,), {}), "IExecutionContext": type("IExecutionContext", (_Base,), {}),
    }


def load_tensorrt(version: str, modules: dict) -> types.ModuleType:
    """Import NVIDIA's ``tensorrt`` package of ``version`` (its ``__init__`` and ``plugin``) on the stand-in core.

    ``modules`` is ``sys.modules`` or a monkeypatched view of it: the caller restores it.
    """
    root = BINDINGS / version / "tensorrt"
    for name in [m for m in modules if m == "tensorrt" or m.startswith("tensorrt.")]:
        del modules[name]
    modules["tensorrt.tensorrt"] = make_core(version)
    spec = importlib.util.spec_from_file_location("tensorrt", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    trt = importlib.util.module_from_spec(spec)
    modules["tensorrt"] = trt
    spec.loader.exec_module(trt)
    import tensorrt.plugin  # noqa: F401  (NVIDIA's front end, imported against the stand-in)

    return trt


# ----------------------------------------------------------------------------- what the parser and builder do


def parser_fields(trt, creator, node_attrs: dict[str, Any]) -> list:
    """onnx-tensorrt ``loadFields``: the creator's declared fields, from the node's attributes, as the parser encodes them.

    ``node_attrs`` maps an attribute name to its ONNX value (``int``, ``float`` or ``str``,
    as ``onnx.helper.get_attribute_value`` gives; ``bytes`` for STRING). Attributes the
    creator does not declare (``plugin_namespace``, ``plugin_version``, ``aot``) are not passed.
    """
    fields = []
    for declared in creator.field_names:
        if declared.name not in node_attrs:
            continue  # the parser warns and skips
        value = node_attrs[declared.name]
        if isinstance(value, (str, bytes)):
            raw = value.encode() if isinstance(value, str) else value
            fields.append(trt.PluginField(declared.name, np.frombuffer(raw + b"\0", np.int8), trt.PluginFieldType.CHAR))
        elif isinstance(value, float):
            fields.append(trt.PluginField(declared.name, np.array([value], np.float32), trt.PluginFieldType.FLOAT32))
        else:  # AttributeProto::INT -> attrs.get<int32_t> -> kINT32, length 1
            fields.append(trt.PluginField(declared.name, np.array([value], np.int32), trt.PluginFieldType.INT32))
    return fields


@dataclass
class LaunchRecord:
    """What the builder got back from the plugin: launch parameters and extra scalar arguments as expressions."""

    grid: tuple = ()
    block: tuple = ()
    shared_mem: Any = None
    extra_args: list = field(default_factory=list)
    extra_arg_dtypes: list = field(default_factory=list)

    def __setattr__(self, name, value):  # the builder's IKernelLaunchParams receives ISymExpr objects
        if name in ("grid_x", "grid_y", "grid_z"):
            i = "xyz".index(name[-1])
            self.grid = tuple(value if j == i else (self.grid[j] if j < len(self.grid) else None) for j in range(3))
        elif name in ("block_x", "block_y", "block_z"):
            i = "xyz".index(name[-1])
            self.block = tuple(value if j == i else (self.block[j] if j < len(self.block) else None) for j in range(3))
        else:
            object.__setattr__(self, name, value)


class _SymExprSetter:
    def __init__(self, record: LaunchRecord):
        self.record, self.nbSymExprs = record, 0

    def __setitem__(self, i, sym):
        self.record.extra_args.append(sym.expr)
        self.record.extra_arg_dtypes.append(sym.dtype)


@dataclass
class PluginLayer:
    """The plugin as the builder saw it."""

    plugin: Any
    fields: list
    output_types: list
    output_shapes: list
    formats: list
    tactic: int
    launch: LaunchRecord
    kernel_name: bytes
    ptx: bytes


def build_plugin_layer(trt, op_type: str, node_attrs: dict[str, Any], inputs: Sequence[tuple[Sequence[_Expr], Any]],
                       plugin_version: str = "1") -> PluginLayer:
    """Add an ONNX plugin node to a network and build it, calling the plugin as TensorRT does.

    ``inputs`` are ``(dims, dtype)`` per input, dims as :class:`_Expr` (constants or :func:`symbol`).
    """
    namespace = node_attrs.get("plugin_namespace", b"")
    namespace = namespace.decode() if isinstance(namespace, bytes) else namespace
    creator = trt.get_plugin_registry().get_creator(op_type, plugin_version, namespace)
    if creator is None:
        raise LookupError(f"Plugin not found: {op_type}, version {plugin_version}, namespace {namespace!r}")
    fields = parser_fields(trt, creator, node_attrs)
    Q = trt.QuickPluginCreationRequest
    request = (Q.STRICT_AOT if node_attrs["aot"] else Q.STRICT_JIT) if "aot" in node_attrs else Q.UNKNOWN
    plugin = creator.create_plugin(op_type, namespace, trt.PluginFieldCollection(fields), trt.TensorRTPhase.BUILD,
                                   request)
    dtypes = [d for _, d in inputs]
    output_types = list(plugin.get_output_data_types(dtypes, [len(dims) for dims, _ in inputs]))
    builder = _ExprBuilder()
    in_exprs = []
    for dims, _ in inputs:
        e = trt.DimsExprs(len(dims))
        for j, d in enumerate(dims):
            e[j] = d
        in_exprs.append(e)
    output_shapes = plugin.get_output_shapes(in_exprs, [], builder)

    def desc(dims, dtype, fmt):
        d = trt.DynamicPluginTensorDesc()
        d.desc.dims = trt.Dims(tuple(-1 if not x.is_constant() else x.get_constant_value() for x in dims))
        d.desc.type, d.desc.format = dtype, fmt
        return d

    lin = trt.TensorFormat.LINEAR
    in_out = [desc(dims, t, lin) for dims, t in inputs] + [desc(s, t, lin) for s, t in zip(output_shapes, output_types)]
    formats = plugin.get_supported_format_combinations(in_out, len(inputs))
    n_io = len(in_out)
    combos = [[(f.type, f.format) for f in formats[i:i + n_io]] for i in range(0, len(formats), n_io)]
    wanted = [(d.desc.type, d.desc.format) for d in in_out]
    if wanted not in combos:
        raise ValueError(f"the plugin offers no format combination {wanted}; it offers {combos}")
    plugin.configure_plugin(in_out[:len(inputs)], in_out[len(inputs):])
    tactics = plugin.get_valid_tactics()
    tactic = tactics[0] if tactics else 0
    plugin.set_tactic(tactic)
    record = LaunchRecord()
    plugin.get_launch_params(in_exprs, in_out, len(inputs), record, _SymExprSetter(record), builder)
    name, ptx = plugin.get_kernel([d.desc for d in in_out[:len(inputs)]], [d.desc for d in in_out[len(inputs):]])
    return PluginLayer(plugin, fields, output_types, output_shapes, formats, tactic, record, name, ptx)


def restore_modules(saved: dict) -> None:
    """Put back the ``tensorrt*`` entries of ``sys.modules`` saved before :func:`load_tensorrt`."""
    for name in [m for m in sys.modules if m == "tensorrt" or m.startswith("tensorrt.")]:
        del sys.modules[name]
    sys.modules.update(saved)


# ----------------------------------------------------------------------------- TensorRT names a source file uses


def trt_names_used(path: str | Path, roots: Sequence[str] = ("trt",)) -> dict[str, int]:
    """Attribute names the file reads or sets on TensorRT objects, with a line number each.

    Static: an expression is a TensorRT object when it is a root name (``trt``), an attribute
    or call result of one (``trt.Builder(logger)``, ``builder.create_network(...)``), a local
    name or ``self.x`` assigned from one (``ctx = self._context``, also in tuple assignments),
    or a parameter of a function of the file that some call passes one to. Followed to a fixed
    point across the file, so names on code paths no test executes are found too.
    ``trt.__version__`` is a string, not followed.
    """
    import ast

    tree = ast.parse(Path(path).read_text())
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    shared: set[str] = set()  # self.x attributes holding TensorRT objects
    params: dict[str, set[str]] = {name: set() for name in functions}  # parameters passed TensorRT objects

    def is_trt(e, local) -> bool:
        if isinstance(e, ast.Call):
            return is_trt(e.func, local)
        if isinstance(e, ast.Attribute):
            if e.attr == "__version__":
                return False
            return ast.unparse(e) in local or is_trt(e.value, local)
        if isinstance(e, ast.Name):
            return e.id in local
        return False

    def pairs(node):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for t in targets:
            if isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple) and len(t.elts) == len(node.value.elts):
                yield from zip(t.elts, node.value.elts)
            else:
                yield t, node.value

    def scope(name, fn) -> set[str]:
        local = set(roots) | shared | params[name]
        for _ in range(10):
            before = len(local)
            for node in ast.walk(fn):
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    local.update(ast.unparse(t) for t, v in pairs(node)
                                 if isinstance(t, (ast.Name, ast.Attribute)) and is_trt(v, local))
            if len(local) == before:
                break
        return local

    for _ in range(10):
        before = len(shared) + sum(map(len, params.values()))
        for name, fn in functions.items():
            local = scope(name, fn)
            shared.update(n for n in local if n.startswith("self."))
            for call in ast.walk(fn):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in functions:
                    callee = [a.arg for a in functions[call.func.id].args.args]
                    params[call.func.id].update(p for p, a in zip(callee, call.args) if is_trt(a, local))
        if len(shared) + sum(map(len, params.values())) == before:
            break
    used: dict[str, int] = {}
    for name, fn in functions.items():
        local = scope(name, fn)
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute) and is_trt(node.value, local):
                used.setdefault(node.attr, node.lineno)
    return used
