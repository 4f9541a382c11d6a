"""The sidecar: one typed JSON file beside every artefact, saying how to feed it and what it computes.

``cat.onnx`` -> ``cat.onnx.json``, ``cat.engine`` -> ``cat.engine.json``. The engine itself
stays a plain TensorRT plan (loadable by trtexec and Triton); ``export.py`` writes the
sidecar and the runtime and ``validate`` read it, all through :class:`Sidecar`.

Version 1 is the layout written since the first release. Version 2 adds ``custom_ops`` (the
custom ONNX nodes the graph needs, e.g. ``ai.onnx.contrib::FusedCatGate``) and
``custom_ops_library`` (the compiled ONNX Runtime library that runs them); only a sidecar that
lists custom ops is written as version 2, so older cat-deploy keeps reading every other one and
asks for an upgrade, not about an unknown field, for one it could not run. :meth:`Sidecar.from_dict`
refuses, with one line each, a file that is not a JSON object, not a cat-deploy sidecar,
newer than this package, missing a field, or holding a field of the wrong kind.

Example::

    side = read_sidecar("out/cat.onnx")        # Sidecar, or SidecarError with one line
    side.input_size, side.profile.max, side.model.class_names
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..config import PAD_VALUE, ModelConfig
from .errors import SidecarError
from .files import write_json
from .plugin_ids import GEP_FORMULATIONS

__all__ = ["SIDECAR_FORMAT", "SIDECAR_VERSION", "PRECISIONS", "ShapeProfile", "Normalize", "PostprocessOptions",
           "Sidecar", "sidecar_path", "read_sidecar", "write_sidecar"]

SIDECAR_FORMAT = "cat-deploy-artefact"
SIDECAR_VERSION = 2  # the newest layout this package reads and writes
PRECISIONS = ("fp32", "fp16", "int8")
NMS_MODES = ("host", "graph")


@dataclass(frozen=True)
class ShapeProfile:
    """Input shapes (B, 3, H, W): ``opt`` is what the graph is traced at; min/max bound dynamic axes."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    @property
    def dynamic(self) -> bool:
        return self.min != self.max

    @classmethod
    def make(cls, imgsz: Sequence[int], batch: int = 1, dynamic: bool = False,
             min_imgsz: Optional[Sequence[int]] = None, max_imgsz: Optional[Sequence[int]] = None) -> "ShapeProfile":
        h, w = int(imgsz[0]), int(imgsz[1])
        opt = (batch, 3, h, w)
        lo = tuple(min_imgsz) if min_imgsz else (max(32, h // 2), max(32, w // 2))
        hi = tuple(max_imgsz) if max_imgsz else (h * 2, w * 2)
        for flag, size in (("--imgsz", (h, w)), ("--min-imgsz", lo), ("--max-imgsz", hi)):
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"{flag} {' '.join(map(str, size))}: give a height and a width of at least 1 pixel")
        if not dynamic:
            return cls(opt, opt, opt)
        if not (lo[0] <= h <= hi[0] and lo[1] <= w <= hi[1]):
            raise ValueError(f"--imgsz {h} {w} must lie between --min-imgsz {lo} and --max-imgsz {hi}")
        return cls((1, 3, *lo), opt, (batch, 3, *hi))

    def shapes(self) -> list[tuple[int, int, int, int]]:
        """Distinct shapes to validate: min, opt, max."""
        return list(dict.fromkeys([self.min, self.opt, self.max]))

    def to_dict(self) -> dict:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


@dataclass(frozen=True)
class Normalize:
    """Input normalisation ``(x * scale - mean) / std`` per RGB channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1 / 255

    def to_dict(self) -> dict:
        return {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class PostprocessOptions:
    """Detector thresholds at export: fixed in the graph with ``nms="graph"``, defaults otherwise."""

    conf: float = 0.25
    iou: float = 0.5
    max_det: int = 100


@dataclass(frozen=True)
class Sidecar:
    """What an artefact needs beside it: input layout, pre/post-processing, precision, provenance.

    ``precision``, ``versions``, ``options``, ``parity`` and ``engine`` are reports recorded as
    written by the export step (``precision["precision"]`` is one of :data:`PRECISIONS`).
    """

    artefact: str  # file name of the artefact this sidecar describes
    model: ModelConfig
    input_size: tuple[int, int]  # (height, width) the profile's opt shape was exported at
    profile: ShapeProfile
    normalize: Normalize
    precision: dict[str, Any]
    gep: str = "stable"
    input_name: str = "images"
    output_names: tuple[str, ...] = ("cls_logits", "box_deltas")
    class_names: tuple[str, ...] = ()
    letterbox: bool = True
    pad_value: int = PAD_VALUE
    channel_order: str = "RGB"
    nms: Optional[str] = None  # detectors: "host" (raw outputs) or "graph" (fixed-size detections)
    postprocess: Optional[PostprocessOptions] = None
    opset: Optional[int] = None
    checkpoint: Optional[str] = None
    versions: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    parity: Optional[dict[str, Any]] = None
    engine: Optional[dict[str, Any]] = None  # TensorRT build facts (engine sidecars)
    onnx: Optional[str] = None  # the ONNX file an engine was built from
    validated: Optional[bool] = None  # parity against PyTorch passed (False: not run, failed or interrupted)
    artefact_bytes: Optional[int] = None  # size of the artefact it was written for (a sidecar moved elsewhere shows)
    custom_ops: tuple[str, ...] = ()  # "domain::op_type" of the custom nodes in the graph (version 2)
    custom_ops_library: Optional[str] = None  # file name of the compiled ONNX Runtime library that runs them

    @property
    def version(self) -> int:
        """2 when the graph needs custom ops (fields of version 2), else 1."""
        return 2 if self.custom_ops else 1

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def dynamic(self) -> bool:
        return self.profile.dynamic

    @property
    def precision_mode(self) -> str:
        return self.precision["precision"]

    def replace(self, **changes) -> "Sidecar":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in its version's layout (``task`` and ``dynamic`` repeated for other readers)."""
        d: dict[str, Any] = {
            "format": SIDECAR_FORMAT, "version": self.version, "artefact": self.artefact,
            "model": self.model.to_dict(), "task": self.task, "class_names": list(self.class_names),
            "input_name": self.input_name, "output_names": list(self.output_names),
            "input_size": list(self.input_size), "letterbox": self.letterbox, "pad_value": self.pad_value,
            "channel_order": self.channel_order, "normalize": self.normalize.to_dict(),
            "profile": self.profile.to_dict(), "dynamic": self.dynamic, "gep": self.gep, "nms": self.nms,
            "postprocess": dataclasses.asdict(self.postprocess) if self.postprocess else None,
            "precision": self.precision, "opset": self.opset, "checkpoint": self.checkpoint,
            "versions": self.versions, "options": self.options,
        }
        for key in ("parity", "engine", "onnx", "validated", "artefact_bytes"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.custom_ops:
            d["custom_ops"], d["custom_ops_library"] = list(self.custom_ops), self.custom_ops_library
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_jsonable)

    @classmethod
    def from_json(cls, text: str, source: str = "sidecar") -> "Sidecar":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SidecarError(f"{source} is not valid JSON ({e}); re-export with python export.py") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "sidecar") -> "Sidecar":
        """Check and type a parsed sidecar; :class:`SidecarError` (one line) names the first problem."""
        return _Reader(source).read(data)

    @classmethod
    def read(cls, artefact: str | os.PathLike) -> "Sidecar":
        """The sidecar of ``artefact``; one-line :class:`SidecarError` when missing or unusable."""
        path = sidecar_path(artefact)
        if not path.is_file():
            raise SidecarError(
                f"'{artefact}' has no sidecar '{path.name}' (input size, normalisation, classes); re-export with "
                f"python export.py --ckpt MODEL.pth, or place the sidecar written by export.py beside it")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise SidecarError(f"sidecar '{path}' cannot be read ({e}); re-export with python export.py") from None
        return cls.from_json(text, f"sidecar '{path}'")

    def write(self, artefact: str | os.PathLike) -> Path:
        """Write ``<artefact>.json`` atomically (``artefact`` set to the file's name); returns its path."""
        data = self.replace(artefact=Path(artefact).name).to_dict()
        return write_json(sidecar_path(artefact), data, indent=2, default=_jsonable)


def sidecar_path(artefact: str | os.PathLike) -> Path:
    return Path(str(artefact) + ".json")


def read_sidecar(artefact: str | os.PathLike) -> Sidecar:
    return Sidecar.read(artefact)


def write_sidecar(artefact: str | os.PathLike, sidecar: Sidecar) -> Path:
    return sidecar.write(artefact)


def _jsonable(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


_REQUIRED = ("artefact", "model", "input_size", "profile", "normalize", "precision")
_KNOWN = {f.name for f in dataclasses.fields(Sidecar)} | {"format", "version", "task", "dynamic"}


class _Reader:
    """Field-by-field checks of a parsed sidecar, each failing with one line that names the field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, problem: str):
        raise SidecarError(f"{self.source} {problem}; re-export with python export.py --ckpt MODEL.pth")

    def read(self, d: Any) -> Sidecar:
        if not isinstance(d, dict):
            self.fail(f"is not a JSON object (it holds a {type(d).__name__})")
        if d.get("format") != SIDECAR_FORMAT:
            self.fail(f"is not a cat-deploy sidecar (no \"format\": \"{SIDECAR_FORMAT}\")")
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.fail(f"has no valid version (got {version!r})")
        if version > SIDECAR_VERSION:
            raise SidecarError(f"{self.source} has version {version}, newer than this cat-deploy reads "
                               f"({SIDECAR_VERSION}): upgrade cat-deploy, or re-export with this one")
        unknown = sorted(set(d) - _KNOWN)
        if unknown:
            self.fail(f"has unknown fields {unknown} (edited, or written by another cat-deploy)")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            self.fail(f"lacks the fields {missing}")
        model = self.model(d["model"])
        profile = self.profile(d["profile"])
        side = Sidecar(
            artefact=self.string(d, "artefact"),
            model=model,
            input_size=self.ints(d["input_size"], "input_size", 2, "[height, width]"),
            profile=profile,
            normalize=self.normalize(d["normalize"]),
            precision=self.precision(d["precision"]),
            gep=self.choice(d, "gep", GEP_FORMULATIONS, "stable"),
            input_name=self.string(d, "input_name", "images"),
            output_names=self.names(d.get("output_names", ["cls_logits", "box_deltas"])),
            class_names=self.class_names(d.get("class_names", []), model),
            letterbox=self.boolean(d, "letterbox", model.letterbox),
            pad_value=self.pad(d.get("pad_value", PAD_VALUE)),
            channel_order=self.choice(d, "channel_order", ("RGB", "BGR"), "RGB"),
            nms=self.choice(d, "nms", NMS_MODES, None, optional=True),
            postprocess=self.postprocess(d.get("postprocess")),
            opset=self.optional_int(d, "opset"),
            checkpoint=self.optional_string(d, "checkpoint"),
            versions=self.mapping(d, "versions", {}),
            options=self.mapping(d, "options", {}),
            parity=self.mapping(d, "parity", None),
            engine=self.mapping(d, "engine", None),
            onnx=self.optional_string(d, "onnx"),
            validated=self.optional_bool(d, "validated"),
            artefact_bytes=self.optional_int(d, "artefact_bytes"),
            custom_ops=self.custom_ops(d, version),
            custom_ops_library=self.optional_string(d, "custom_ops_library"),
        )
        if "task" in d and d["task"] != model.task:
            self.fail(f"says task {d['task']!r} but its model config says {model.task!r}")
        if "dynamic" in d and d["dynamic"] != profile.dynamic:
            self.fail(f"says dynamic={d['dynamic']!r} but its profile is {'dynamic' if profile.dynamic else 'static'}")
        return side

    # -- field kinds
    def model(self, v: Any) -> ModelConfig:
        if not isinstance(v, dict):
            self.fail("field 'model' must be the model config object")
        try:
            return ModelConfig.from_dict(v)
        except (TypeError, ValueError, KeyError) as e:
            self.fail(f"field 'model' is not a valid model config ({str(e).splitlines()[0][:200]})")

    def custom_ops(self, d: dict, version: int) -> tuple[str, ...]:
        v = d.get("custom_ops", [])
        if not isinstance(v, list) or not all(isinstance(x, str) and "::" in x for x in v):
            self.fail(f"field 'custom_ops' must be a list of \"domain::op_type\" names, got {v!r}")
        if v and version < 2:
            self.fail(f"lists custom_ops {v} but says version {version} (custom ops came with version 2)")
        if not v and d.get("custom_ops_library") is not None:
            self.fail("names a custom_ops_library but lists no custom_ops")
        return tuple(v)

    def ints(self, v: Any, name: str, n: int, what: str) -> tuple[int, ...]:
        if (not isinstance(v, (list, tuple)) or len(v) != n
                or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)):
            self.fail(f"field '{name}' must be {what}, {n} positive integers, got {v!r}")
        return tuple(v)

    def profile(self, v: Any) -> ShapeProfile:
        if not isinstance(v, dict) or set(v) != {"min", "opt", "max"}:
            self.fail(f"field 'profile' must hold min, opt and max shapes, got {v!r}")
        shapes = [self.ints(v[k], f"profile.{k}", 4, "[batch, 3, height, width]") for k in ("min", "opt", "max")]
        if any(s[1] != 3 for s in shapes):
            self.fail(f"field 'profile' must have 3 channels, got {v!r}")
        for axis, (lo, opt, hi) in zip(("batch", "channels", "height", "width"), zip(*shapes)):
            if not lo <= opt <= hi:
                self.fail(f"field 'profile' has {axis} min {lo}, opt {opt}, max {hi}, not in order")
        return ShapeProfile(*shapes)

    def floats(self, v: Any, name: str, positive: bool = False) -> tuple[float, float, float]:
        ok = isinstance(v, (list, tuple)) and len(v) == 3 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and (x > 0 or not positive)
            for x in v)
        if not ok:
            self.fail(f"field '{name}' must be 3 {'positive ' if positive else ''}numbers (R, G, B), got {v!r}")
        return tuple(float(x) for x in v)

    def normalize(self, v: Any) -> Normalize:
        if not isinstance(v, dict):
            self.fail(f"field 'normalize' must be an object with scale, mean and std, got {v!r}")
        scale = v.get("scale", 1 / 255)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale > 0:
            self.fail(f"field 'normalize.scale' must be a positive number, got {scale!r}")
        return Normalize(self.floats(v.get("mean"), "normalize.mean"), self.floats(v.get("std"), "normalize.std", True),
                         float(scale))

    def precision(self, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict) or v.get("precision") not in PRECISIONS:
            self.fail(f"field 'precision' must be the precision report with \"precision\" one of {PRECISIONS}")
        return v

    def postprocess(self, v: Any) -> Optional[PostprocessOptions]:
        if v is None:
            return None
        number = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)  # noqa: E731
        if not isinstance(v, dict) or not set(v) <= {"conf", "iou", "max_det"} or not all(map(number, v.values())):
            self.fail(f"field 'postprocess' must hold the numbers conf, iou and max_det, got {v!r}")
        p = PostprocessOptions(**v)
        if not (0 <= p.conf <= 1 and 0 < p.iou <= 1 and isinstance(p.max_det, int) and p.max_det >= 1):
            self.fail(f"field 'postprocess' has conf/iou outside 0..1 or max_det < 1: {v!r}")
        return p

    def names(self, v: Any) -> tuple[str, ...]:
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
            self.fail(f"field 'output_names' must be a non-empty list of names, got {v!r}")
        return tuple(v)

    def class_names(self, v: Any, model: ModelConfig) -> tuple[str, ...]:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(f"field 'class_names' must be a list of names, got {v!r}")
        if v and len(v) != model.num_classes:
            self.fail(f"lists {len(v)} class names for a model with {model.num_classes} classes")
        return tuple(v)

    def pad(self, v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 255:
            self.fail(f"field 'pad_value' must be an integer 0..255, got {v!r}")
        return v

    def choice(self, d: dict, name: str, allowed: tuple, default, optional: bool = False):
        v = d.get(name, default)
        if v is None and optional:
            return None
        if v not in allowed:
            self.fail(f"field '{name}' must be one of {allowed}, got {v!r}")
        return v

    def string(self, d: dict, name: str, default: Optional[str] = None) -> str:
        v = d.get(name, default)
        if not isinstance(v, str) or not v:
            self.fail(f"field '{name}' must be a non-empty string, got {v!r}")
        return v

    def optional_string(self, d: dict, name: str) -> Optional[str]:
        return None if d.get(name) is None else self.string(d, name)

    def optional_int(self, d: dict, name: str) -> Optional[int]:
        v = d.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            self.fail(f"field '{name}' must be an integer, got {v!r}")
        return v

    def optional_bool(self, d: dict, name: str) -> Optional[bool]:
        return None if d.get(name) is None else self.boolean(d, name, None)

    def boolean(self, d: dict, name: str, default: bool) -> bool:
        v = d.get(name, default)
        if not isinstance(v, bool):
            self.fail(f"field '{name}' must be true or false, got {v!r}")
        return v

    def mapping(self, d: dict, name: str, default):
        v = d.get(name, default)
        if v is not default and not isinstance(v, dict):
            self.fail(f"field '{name}' must be an object, got a {type(v).__name__}")
        return v
