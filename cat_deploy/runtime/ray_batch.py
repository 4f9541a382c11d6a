"""``infer.py --ray``: the same detection run, spread over a Ray cluster with Ray Data.

Pipeline (Ray Data streams blocks between the stages, with backpressure)::

    driver       list the inputs (open_source; pyarrow.fs for URIs such as s3://), reconcile the journal
                 by input identity, drop inputs already done
    CPU tasks    read -> decode (read_image / decode_image) -> spec.preprocess (letterbox, normalise)
    actor pool   one runner per actor (open_model: TensorRT, ONNX Runtime or PyTorch; num_gpus=1 each
                 when the cluster has GPUs) -> detections_from_outputs -> boxes_to_original
                 -> per-image files (labels/, images/)
    driver       OUT/.partial/journal.jsonl (the journal of infer.py) -> detections.json, summary.json,
                 and detections.parquet (one row per detection, for analytics)

Everything an image goes through is the single-process code: the same runners, pre- and
post-processing, output checks, journal (keyed by :func:`~cat_deploy.runtime.source.input_identity`)
and COCO writer, so ``detections.json`` is the same file as ``infer.py`` without ``--ray`` writes
for the same inputs, and either mode resumes the other's journal. Ray restarts an actor whose
process dies and retries its batches (Ray Data's defaults, ``max_restarts=-1,
max_task_retries=-1``); records reach the journal only when the driver receives them, once per
input identity, so a retried batch neither loses nor duplicates a frame. Bad images are journaled
as skipped with their reason, as in ``infer.py``.

Local paths must be visible to every node (one machine, or a shared file system); URIs are
read by the workers themselves with ``pyarrow.fs``. Ray and pyarrow are optional
(``pip install 'cat-deploy[ray]'``), imported on first use.
"""
from __future__ import annotations

import json
import logging
import math
import os
import posixpath
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

import numpy as np

from ..core.errors import BackendUnavailable, MissingDependency, SidecarError
from ..core.files import atomic_write, write_json
from ..core.optional import lazy_import, require
from ..core.sidecar import read_sidecar
from ..data.image import ImageReadError, decode_image, is_image_file, read_image
from ..data.transforms import Letterbox, boxes_to_original
from ..paths import OutputPathError, refuse_inputs
from .backends import ENGINE_SUFFIXES, ModelError, ModelSpec, choose_batch, open_model, parse_classes, spec_from_sidecar
from .detect import (DetectOptions, InferError, check_options, open_journal, reconcile_journal, source_changes_warning,
                     summarize_run, warm_up)
from .outputs import StageTimes, done_record, format_summary, skip_record, write_image_files
from .processing import detections_from_outputs
from .runners import OnnxRuntimeRunner, TorchRunner
from .source import Item, Source, SourceError, open_source

__all__ = ["run_ray", "plan_actors", "parquet_table", "uri_source", "INSTALL_HINT"]

INSTALL_HINT = "--ray needs Ray Data, which is not installed: pip install 'cat-deploy[ray]'"
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20

torch = lazy_import("torch", "running a PyTorch checkpoint on Ray")
pa = lazy_import("pyarrow", "--ray")
pafs = lazy_import("pyarrow.fs", "--ray")
parquet = lazy_import("pyarrow.parquet", "--ray")
ray_data = lazy_import("ray.data", "--ray")


def _ray():
    """``ray`` with ``ray.data`` loaded, or :class:`InferError` (exit 3) saying what to install."""
    try:
        ray = require("ray", "--ray")
        require("ray.data", "--ray")
    except MissingDependency:
        raise InferError(INSTALL_HINT, code=3) from None
    return ray


def _is_uri(text: str) -> bool:
    return "://" in text


# ----------------------------------------------------------------------------- inputs


def _source(opts: DetectOptions) -> tuple[Source, dict[str, str]]:
    """The inputs as infer.py sees them, and where each is read from (input name -> path or URI)."""
    if _is_uri(opts.images):
        return uri_source(opts.images, opts.recursive, opts.max_pixels)
    source = open_source(opts.images, opts.recursive, opts.max_pixels)
    if source.kind == "video":
        raise SourceError(f"--ray reads image files; '{opts.images}' is a video: extract its frames to a folder, "
                          "or run without --ray")
    return source, {it.name: str(it.path) for it in source.items}


def uri_source(uri: str, recursive: bool = False, max_pixels: Optional[int] = None) -> tuple[Source, dict[str, str]]:
    """Images under a URI (a prefix or one object) listed with ``pyarrow.fs``, sorted by name relative to it.

    Each input's identity (name, size, mtime) comes from the listing, so a rerun recognises what it did
    as with local files. Returns the :class:`Source` (kind ``"uri"``) and name -> URI."""
    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.File:
            files, root = [info], posixpath.dirname(root)
        elif info.type == pafs.FileType.Directory:
            sel = pafs.FileSelector(root, recursive=recursive)
            files = [f for f in fs.get_file_info(sel) if f.type == pafs.FileType.File]
        else:
            raise SourceError(f"'{uri}' not found")
    except (OSError, ValueError) as e:  # pyarrow's errors derive from these
        if isinstance(e, SourceError):
            raise
        raise SourceError(f"cannot list '{uri}' with pyarrow.fs: {str(e).splitlines()[0][:200]}") from None
    scheme = uri.split("://", 1)[0]
    found = sorted((posixpath.relpath(f.path, root) if root else f.path, f) for f in files if is_image_file(f.path))
    if not found:
        raise SourceError(f"no images under '{uri}'" + ("" if recursive else " (add --recursive for sub-folders)"))
    # Item.path is what --out is checked against: the file itself for file://, else a path no local folder has
    items = [Item(i + 1, name, Path(f.path if scheme == "file" else f"{scheme}://{f.path}"), None,
                  int(f.size) if f.size is not None else None, int(f.mtime_ns) if f.mtime_ns is not None else None)
             for i, (name, f) in enumerate(found)]
    extra = {} if max_pixels is None else {"max_pixels": max_pixels}
    source = Source("uri", uri, items, len(items), **extra)
    return source, {name: f"{scheme}://{f.path}" for name, f in found}


def _read(uri: str, max_pixels: int) -> np.ndarray:
    if not _is_uri(uri):
        return read_image(uri, max_pixels=max_pixels)
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        with fs.open_input_file(path) as f:
            data = f.readall()
    except (OSError, ValueError) as e:
        raise ImageReadError(uri, f"cannot read ({str(e).splitlines()[0][:200]})", "check the URI and credentials")
    return decode_image(data, uri, max_pixels)


# ----------------------------------------------------------------------------- stages


def _prepare(batch: dict[str, np.ndarray], spec: ModelSpec, max_pixels: int) -> dict[str, np.ndarray]:
    """CPU task: rows ``identity`` (JSON), ``name``, ``uri`` -> ``tensor`` float32 [n, 3, h, w], ``lb`` float64
    [n, 5] (scale, pad_x, pad_y, src_h, src_w), ``error`` ('' when decoded), ``decode_s``, ``pre_s``."""
    n = len(batch["name"])
    tensor = np.zeros((n, 3, *spec.input_hw), np.float32)
    lb = np.zeros((n, 5), np.float64)
    error, decode_s, pre_s = [""] * n, np.zeros(n), np.zeros(n)
    for i, uri in enumerate(batch["uri"]):
        try:
            t0 = time.perf_counter()
            image = _read(str(uri), max_pixels)
            t1 = time.perf_counter()
            tensor[i], box = spec.preprocess(image)
            decode_s[i], pre_s[i] = t1 - t0, time.perf_counter() - t1
            lb[i] = (box.scale, box.pad_x, box.pad_y, *box.src_size)
        except ImageReadError as e:
            error[i] = e.reason
        except MemoryError:
            error[i] = "out of memory while decoding (image too large)"
        except Exception as e:  # one odd file must not end the run, as in infer.py
            error[i] = f"unexpected {type(e).__name__} while reading: {str(e)[:200]}"
    return {**batch, "tensor": tensor, "lb": lb, "error": np.array(error, dtype=object), "decode_s": decode_s,
            "pre_s": pre_s}


class _Detector:
    """Actor: holds one entered runner; a batch of prepared rows -> journal records (JSON), in row order."""

    def __init__(self, engine: str, device: str, batch: int, threads: int, opts: dict[str, Any], classes):
        runner, self.spec = open_model(engine, device)
        if isinstance(runner, OnnxRuntimeRunner):
            runner.threads = threads
        elif isinstance(runner, TorchRunner):
            torch.set_num_threads(threads)
        self.runner = runner.__enter__()
        self.batch, self.opts, self.classes = batch, opts, classes
        self.out = Path(opts["out"])
        self.pid, self.calls = os.getpid(), 0
        warm_up(self.runner, self.spec, batch)  # as infer.py: allocates, and checks the outputs against the sidecar

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n, spec, o = len(rows["name"]), self.spec, self.opts
        ok = [i for i in range(n) if not rows["error"][i]]
        records: list[Optional[dict[str, Any]]] = [None] * n
        infer_s = post_s = 0.0
        for s in range(0, len(ok), self.batch):
            idx = ok[s:s + self.batch]
            x = rows["tensor"][idx]
            if spec.static_batch and len(x) < self.batch:  # static engines take exactly `batch`: repeat the last
                x = np.concatenate([x, np.repeat(x[-1:], self.batch - len(x), axis=0)])
            outputs = self.runner.infer({spec.input_name: np.ascontiguousarray(x)})
            infer_s += self.runner.last_inference_time()
            t0 = time.perf_counter()
            outputs = {k: v[:len(idx)] for k, v in outputs.items()}
            dets = detections_from_outputs(outputs, spec.input_hw, spec.detector, o["conf"], o["iou"], o["max_det"],
                                           self.classes)
            for i, d in zip(idx, dets):
                records[i] = self._done(rows, i, d)
            post_s += time.perf_counter() - t0
        for i in range(n):
            if records[i] is None:
                records[i] = skip_record(json.loads(rows["identity"][i]), str(rows["error"][i]))
        self.calls += 1
        return {"name": rows["name"], "record": np.array([json.dumps(r) for r in records], dtype=object),
                "decode_s": rows["decode_s"], "pre_s": rows["pre_s"], "pid": np.full(n, self.pid),
                "call": np.full(n, self.calls), "infer_s": np.full(n, infer_s), "post_s": np.full(n, post_s)}

    def _done(self, rows, i: int, d: dict[str, np.ndarray]) -> dict[str, Any]:
        sc, px, py, h, w = rows["lb"][i]
        lb = Letterbox(float(sc), float(px), float(py), (int(h), int(w)), tuple(self.spec.input_hw))
        rec = done_record(json.loads(rows["identity"][i]), (int(h), int(w)), boxes_to_original(d["boxes"], lb),
                          d["scores"], d["labels"])
        o = self.opts
        if o["save_images"] or o["save_txt"] or o["save_json"]:
            image = _read(str(rows["uri"][i]), o["max_pixels"]) if o["save_images"] else None
            write_image_files(self.out, rec, self.spec.class_names, image, o["save_txt"], o["save_json"])
        return rec


# ----------------------------------------------------------------------------- driver


def _spec(engine: str, device: str) -> ModelSpec:
    """The model's :class:`ModelSpec` on the driver. ``open_model`` loads no runtime; the driver may lack
    TensorRT though (only the GPU actors need it), so an engine's spec then comes from its sidecar alone."""
    try:
        return open_model(engine, device)[1]
    except BackendUnavailable:
        if Path(engine).suffix.lower() not in ENGINE_SUFFIXES:
            raise
        try:
            return spec_from_sidecar(engine, read_sidecar(engine), "tensorrt")
        except SidecarError as e:
            raise ModelError(str(e)) from None


def _connect(ray, address: str, quiet: bool) -> str:
    """Join the cluster at ``address``, or start a small local one ('' ): all cores, no dashboard,
    a bounded object store. A process that already called ``ray.init`` keeps its cluster."""
    if ray.is_initialized():
        return "this process's cluster"
    level = logging.WARNING if quiet else logging.INFO
    try:
        if address:
            ray.init(address=address, logging_level=level, log_to_driver=not quiet)
            return address
        ray.init(num_cpus=os.cpu_count(), object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False,
                 logging_level=level, log_to_driver=not quiet)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InferError(f"cannot connect to the Ray cluster at '{address or 'local'}': "
                         f"{str(e).splitlines()[0][:200]}") from None
    return "local"


def plan_actors(cpus: float, gpus: int, actors: Optional[int] = None) -> dict[str, Any]:
    """How to place the stages on a cluster with ``cpus`` logical CPUs and ``gpus`` GPUs.

    GPU clusters: one GPU (and one CPU) per actor, one actor per GPU by default; decoding takes
    every other CPU. CPU clusters: the actors together reserve at most all but one CPU, so that
    decoding always has a CPU to run on (else Ray Data would wait for a CPU the actors hold); each
    actor gets an equal share of the cores as intra-op threads; at most two decode tasks per actor
    run at once (each actor's next batch is decoded while it runs the current one, the read-ahead
    of ``infer.py``). That cap, unequal to the actor count, also keeps Ray Data from fusing
    decoding into the actors (it fuses a task stage into an actor stage of the same size and
    resources), which would put decoding in front of inference instead of beside it.
    Returns ``actors``, ``actor_resources``, ``prepare_cpus``, ``prepare_concurrency``, ``threads``.
    """
    if actors is not None and actors < 1:
        raise InferError(f"--ray-actors must be >= 1, got {actors}")
    if gpus:
        n = actors or gpus
        return {"actors": n, "actor_resources": {"num_gpus": 1, "num_cpus": 1}, "prepare_cpus": 1,
                "prepare_concurrency": None, "threads": max(1, int(cpus // n))}
    n = actors or 1
    share = min(1.0, max(cpus - 1, cpus / 2) / n)
    return {"actors": n, "actor_resources": {"num_cpus": share}, "prepare_cpus": min(1.0, cpus - n * share),
            "prepare_concurrency": 2 * n, "threads": max(1, round(cpus / n))}


def run_ray(opts: DetectOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """:func:`cat_deploy.runtime.detect.run_detection` on the Ray cluster ``opts.ray`` ('' = local) with
    ``opts.ray_actors`` detection actors; returns the same summary plus ``ray`` (address, placement,
    actor processes seen) and ``outputs.parquet``.

    Raises :class:`InferError` (one line, exit code: 2 bad input, 3 Ray missing) when the run cannot start.

    Example::

        s = run_ray(DetectOptions(engine="out/cat.onnx", images="s3://bucket/drive_0042/", out="runs/d42", ray="auto"))
    """
    ray = _ray()
    gt = check_options(opts)
    try:
        spec = _spec(opts.engine, opts.device)
        batch = choose_batch(opts.batch, spec, opts.engine)
        classes = parse_classes(opts.classes, spec.class_names)
        source, where = _source(opts)
        refuse_inputs([Path(opts.out) / "detections.parquet"], [opts.engine, opts.annotations], "--out")
    except (ModelError, SourceError, OutputPathError) as e:
        raise InferError(str(e)) from None
    except BackendUnavailable as e:
        raise InferError(str(e), code=3) from None
    out, journal, warnings = open_journal(opts, source, spec, batch, classes, log)
    stats = {"submitted": 0, "duplicates_dropped": 0, "pids": set(), "first_result_s": None, "progress": []}
    times, processed, interrupted, wall, address, plan = StageTimes(), 0, False, 0.0, None, {}
    try:
        changes = reconcile_journal(source, journal)
        resumed = len(journal.records)
        todo = [{"identity": json.dumps(it.identity), "name": it.name, "uri": where[it.name]}
                for it in source.items if not journal.done(it.identity)]
        if todo:
            address = _connect(ray, opts.ray or "", opts.quiet)
            res = ray.cluster_resources()
            plan = plan_actors(float(res.get("CPU", 1)), int(res.get("GPU", 0)), opts.ray_actors)
            processed, interrupted, wall = _execute(todo, spec, opts, batch, classes, plan, journal, times, stats)
    finally:
        journal.close()
    runner = SimpleNamespace(name=f"{spec.backend} on ray", providers=[])
    summary = summarize_run(source, spec, opts, journal, batch, times, processed, resumed, wall, interrupted, runner,
                            gt)
    summary["source_changes"] = changes
    summary["ray"] = {"address": address, **plan, "submitted": stats["submitted"],
                      "actor_processes": len(stats["pids"]), "duplicates_dropped": stats["duplicates_dropped"],
                      "first_result_s": stats["first_result_s"], "second_half_img_s": _second_half_rate(stats["progress"])}
    if not interrupted:
        table = parquet_table(json.loads((out / "detections.json").read_text()))
        atomic_write(out / "detections.parquet", lambda tmp: parquet.write_table(table, tmp))
        summary["outputs"]["parquet"] = str(out / "detections.parquet")
    summary["warnings"] = warnings + source_changes_warning(changes, out)
    write_json(out / "summary.json", summary, indent=2)
    if not opts.quiet:
        log(format_summary(summary))
    return summary


def _execute(todo, spec, opts, batch, classes, plan, journal, times, stats) -> tuple[int, bool, float]:
    """Stream ``todo`` through the two stages; journal records as they arrive, each input identity once.

    Returns (images detected in this run, interrupted, wall seconds); ``stats`` gets ``submitted``,
    ``duplicates_dropped`` (records of inputs already journaled), ``pids`` (actor processes seen),
    ``first_result_s`` (seconds until the first batch came back: actor start-up, model load, warm-up)
    and ``progress`` ((seconds, images done) after each batch)."""
    ctx = ray_data.DataContext.get_current()
    ctx.enable_progress_bars = not opts.quiet
    ctx.print_on_execution_start = not opts.quiet
    detector_opts = {k: getattr(opts, k) for k in ("out", "conf", "iou", "max_det", "save_images", "save_txt",
                                                    "save_json", "max_pixels")}
    detector_args = {"engine": str(Path(opts.engine).absolute()), "device": opts.device, "batch": batch,
                     "threads": plan["threads"], "opts": detector_opts, "classes": classes}
    ds = (ray_data.from_items(todo, override_num_blocks=max(1, min(math.ceil(len(todo) / batch), 256)))
          .map_batches(_prepare, batch_size=batch, batch_format="numpy", num_cpus=plan["prepare_cpus"],
                       concurrency=plan["prepare_concurrency"], fn_kwargs={"spec": spec, "max_pixels": opts.max_pixels})
          .map_batches(_Detector, batch_size=batch, batch_format="numpy",
                       compute=ray_data.ActorPoolStrategy(size=plan["actors"]), fn_constructor_kwargs=detector_args,
                       **plan["actor_resources"]))
    processed, interrupted, seen_calls = 0, False, set()
    stats["submitted"] = len(todo)
    t0 = time.perf_counter()
    try:
        for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
            if stats.get("first_result_s") is None:  # actor start (process, imports, model load, warm-up) until here
                stats["first_result_s"] = round(time.perf_counter() - t0, 3)
            records = [json.loads(r) for r in out["record"]]
            fresh = [r for r in records if not journal.done(r)]
            journal.add(fresh)
            for r in fresh:
                if r["status"] == "skipped" and not opts.quiet:
                    print(f"skipped {r['name']}: {r['reason']}", file=sys.stderr)
            for i, r in enumerate(records):
                stats["pids"].add(int(out["pid"][i]))
                if r["status"] == "skipped":
                    continue
                times.add("decode", float(out["decode_s"][i]))
                times.add("preprocess", float(out["pre_s"][i]))
                key = (int(out["pid"][i]), int(out["call"][i]))
                if key not in seen_calls:
                    seen_calls.add(key)
                    times.add("inference", float(out["infer_s"][i]))
                    times.add("postprocess", float(out["post_s"][i]))
            processed += sum(1 for r in fresh if r["status"] == "done")
            stats["duplicates_dropped"] += len(records) - len(fresh)
            stats["progress"].append((time.perf_counter() - t0, processed))
            if opts.stop_after is not None and processed >= opts.stop_after:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
    return processed, interrupted, time.perf_counter() - t0


def _second_half_rate(progress: list[tuple[float, int]]) -> Optional[float]:
    """Images/s over the second half of the run's images: the rate once actors are up and the read-ahead that
    decoding built while they started has been used up."""
    if not progress or progress[-1][1] < 4:
        return None
    half = progress[-1][1] / 2
    t_half, n_half = next((t, n) for t, n in progress if n >= half)
    t_end, n_end = progress[-1]
    return round((n_end - n_half) / (t_end - t_half), 2) if t_end > t_half else None


def parquet_table(doc: dict[str, Any]):
    """``detections.json`` as a pyarrow Table, one row per detection: ``image_id, file_name, width, height,
    category_id, category_name, score, x, y, w, h`` (COCO bbox in original image pixels), ``area``."""
    size = {im["id"]: (im["width"], im["height"]) for im in doc["images"]}
    anns = doc["annotations"]
    cols = {
        "image_id": pa.array([a["image_id"] for a in anns], pa.int64()),
        "file_name": pa.array([a["file_name"] for a in anns], pa.string()),
        "width": pa.array([size[a["image_id"]][0] for a in anns], pa.int32()),
        "height": pa.array([size[a["image_id"]][1] for a in anns], pa.int32()),
        "category_id": pa.array([a["category_id"] for a in anns], pa.int32()),
        "category_name": pa.array([a["category_name"] for a in anns], pa.string()),
        "score": pa.array([a["score"] for a in anns], pa.float64()),
    }
    for j, k in enumerate("xywh"):
        cols[k] = pa.array([a["bbox"][j] for a in anns], pa.float64())
    cols["area"] = pa.array([a["area"] for a in anns], pa.float64())
    return pa.table(cols)
