"""``infer.py``'s work: detections for every input image, with any backend, resumable.

Pipeline (one batch in flight on the model while the next is prepared)::

    reader threads: decode (read_image) -> pre-process (letterbox, normalise)   [ahead, bounded]
    main thread:    stack batch -> runner.submit -> runner.collect previous batch
                    -> detections_from_outputs -> boxes_to_original -> journal + per-image files

Decoding and pre-processing of the next images run in a thread pool while the model
works on the current batch; with TensorRT, whose runner holds two buffer sets,
post-processing of batch k also overlaps the engine's work on batch k+1. A file that
cannot be decoded is journaled as skipped with its reason and the run goes on.

Outputs never replace inputs: before anything is written, ``--out`` is refused when a
folder the run writes into (``OUT`` itself, ``OUT/images``, ``OUT/labels``,
``OUT/.partial``) holds input images, when OUT lies inside a folder the source reads
recursively (the next run would read its outputs), or when a file it writes is the
model, its sidecar, the annotations or the list file. ``--annotations`` is checked
before the run too, and the model's outputs are checked against its sidecar (class
count, anchors) on the first batch.
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Optional

import numpy as np
from tqdm import tqdm

from ..core.errors import BackendUnavailable
from ..data.coco_eval import coco_map
from ..data.coco_json import load_coco_json
from ..data.image import DEFAULT_MAX_PIXELS, ImageReadError
from ..data.transforms import Letterbox, boxes_to_original
from ..paths import OutputPathError, is_within, output_dir, refuse_inputs, resolved
from .backends import ModelError, ModelSpec, check_outputs, choose_batch, open_model, parse_classes
from .outputs import (Journal, StageTimes, coco_document, done_record, format_summary, image_ids, skip_record,
                      write_image_files, write_json)
from .processing import detections_from_outputs
from .runners import Runner
from .source import Item, Source, SourceError, open_source

__all__ = ["DetectOptions", "InferError", "run_detection", "detect_source", "check_options", "open_journal",
           "reconcile_journal", "warm_up", "summarize_run", "source_changes_warning"]


class InferError(RuntimeError):
    """The run cannot start (or go on); ``str()`` is one line for people, ``code`` the exit status."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DetectOptions:
    engine: str
    images: str
    out: str = "runs/infer"
    recursive: bool = False
    conf: float = 0.25
    iou: float = 0.5
    max_det: int = 100
    batch: Optional[int] = None  # default: the artefact's export batch (1 for checkpoints)
    classes: Optional[tuple[str, ...]] = None
    device: str = "auto"
    save_images: bool = False
    save_txt: bool = False
    save_json: bool = False
    annotations: Optional[str] = None
    resume: bool = True
    workers: int = 4
    quiet: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    stop_after: Optional[int] = None  # stop as if interrupted after this many images (tests, staged runs)
    ray: Optional[str] = None  # infer.py --ray: None = this process; "" = a local Ray cluster; else its address
    ray_actors: Optional[int] = None  # --ray-actors: detection actors (default: one per GPU, else one)
    ray: Optional[str] = None  # infer.py --ray: None = this process; "" = a local Ray cluster; else its address
    ray_actors: Optional[int] = None  # --ray-actors: detection actors (default: one per GPU, else one)


@dataclass
class _Prepared:
    item: Item
    tensor: np.ndarray
    lb: Letterbox
    image: Optional[np.ndarray]
    decode_s: float
    pre_s: float


def check_options(o: DetectOptions) -> Optional[dict[str, Any]]:
    """Flags and ``--annotations`` (loaded and checked now, not after the run); returns the annotations."""
    if not 0.0 <= o.conf <= 1.0:
        raise InferError(f"--conf must lie in 0..1, got {o.conf}")
    if not 0.0 < o.iou <= 1.0:
        raise InferError(f"--iou must lie in (0, 1], got {o.iou}")
    if o.max_det < 1:
        raise InferError(f"--max-det must be >= 1, got {o.max_det}")
    if not o.annotations:
        return None
    if not Path(o.annotations).is_file():
        raise InferError(f"--annotations '{o.annotations}' not found (a COCO json with images and annotations)")
    try:
        return load_coco_json(o.annotations)
    except (ValueError, OSError) as e:
        raise InferError(f"--annotations: {e}") from None


def _check_out_folder(o: DetectOptions, source: Source) -> Path:
    """Refuse an ``--out`` whose written parts hold inputs (see the module docstring); create it."""
    out = Path(o.out)
    hint = "choose an --out outside the input folders, e.g. runs/infer"
    parents = {resolved(folder) for folder in {it.path.parent for it in source.items or []}}
    written = [(out / ".partial", "its progress journal")]
    if o.save_images:
        written.append((out / "images", "annotated images"))
    if o.save_txt or o.save_json:
        written.append((out / "labels", "label files"))
    if resolved(out) in parents:
        raise InferError(f"--out '{out}' holds the input images and would receive the outputs beside them: {hint}")
    for folder, what in written:
        hit = next((p for p in parents if is_within(p, folder)), None)
        if hit is not None:
            raise InferError(f"--out '{out}' would write {what} into '{folder}', which holds input images "
                             f"('{hit}'): {hint}")
    if source.recursive and source.scan_root is not None and is_within(out, source.scan_root):
        raise InferError(f"--out '{out}' lies inside '{source.scan_root}', which is read with all its sub-folders: "
                         f"a rerun would take the outputs for inputs; {hint}")
    try:
        files = [out / "detections.json", out / "summary.json", out / ".partial" / "journal.jsonl",
                 out / ".partial" / "journal.previous.jsonl"]
        refuse_inputs(files, [o.engine, str(o.engine) + ".json", o.annotations,
                              source.description if source.kind == "list" else None], "--out")
        return output_dir(out)
    except OutputPathError as e:
        raise InferError(str(e)) from None


def _fingerprint(o: DetectOptions, batch: int, classes) -> dict[str, Any]:
    st = Path(o.engine).stat()
    return {"journal": 2, "model": str(Path(o.engine).absolute()), "model_bytes": st.st_size,
            "model_mtime_ns": st.st_mtime_ns,
            "images": str(o.images), "recursive": o.recursive, "conf": o.conf, "iou": o.iou, "max_det": o.max_det,
            "batch": batch, "classes": classes, "device": o.device, "save_images": o.save_images,
            "save_txt": o.save_txt, "save_json": o.save_json, "max_pixels": o.max_pixels}


def run_detection(opts: DetectOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``opts`` end to end; returns the run summary (also written to ``OUT/summary.json``).

    Raises :class:`InferError` (one line, exit code) when the run cannot start. Bad
    images never raise: they are listed in the summary's ``skipped``.

    Example::

        s = run_detection(DetectOptions(engine="out/cat.onnx", images="assets/samples", out="runs/infer"))
        s["images"]["done"], s["outputs"]["detections"]
    """
    gt = check_options(opts)
    try:
        runner, spec = open_model(opts.engine, opts.device)
        batch = choose_batch(opts.batch, spec, opts.engine)
        classes = parse_classes(opts.classes, spec.class_names)
        source = open_source(opts.images, opts.recursive, opts.max_pixels)
    except (ModelError, SourceError) as e:
        raise InferError(str(e)) from None
    except BackendUnavailable as e:
        raise InferError(str(e), code=3) from None
    out, journal, warnings = open_journal(opts, source, spec, batch, classes, log)
    try:
        with runner:
            warnings += list(getattr(runner, "warnings", []))
            summary = detect_source(source, runner, spec, opts, journal, batch, classes, log, gt)
    except BackendUnavailable as e:
        raise InferError(str(e), code=3) from None
    finally:
        journal.close()
    summary["warnings"] = warnings + summary.get("warnings", [])
    write_json(out / "summary.json", summary, indent=2)
    if not opts.quiet:
        log(format_summary(summary))
    return summary


def open_journal(opts: DetectOptions, source: Source, spec: ModelSpec, batch: int, classes,
                 log: Callable[[str], None] = print) -> tuple[Path, Journal, list[str]]:
    """Check ``--out`` against the inputs (see the module docstring), create it and open the run's journal.

    Returns (OUT, the journal, warnings: an unvalidated artefact, a journal of other settings started
    over, thresholds that NMS in the graph ignores); the warnings are also logged unless quiet.
    Every runner of ``infer.py`` (one process, ``--ray``) starts here, so their journals are one format."""
    out = _check_out_folder(opts, source)
    journal = Journal(out / ".partial" / "journal.jsonl", _fingerprint(opts, batch, classes), resume=opts.resume)
    warnings = []
    if spec.validated is False:
        warnings.append(f"'{opts.engine}' is unvalidated: its sidecar records no passed parity check against "
                        "PyTorch (exported with --no-validate, or parity failed or was interrupted); check it with "
                        "python -m cat_deploy.validate, or re-export")
    if journal.reset_reason:
        warnings.append(f"{out / '.partial'} held a run with other settings ({journal.reset_reason}): started over "
                        "(its journal is kept as journal.previous.jsonl)")
    if spec.nms == "graph" and spec.baked:
        if opts.conf < spec.baked.get("conf", 0) or opts.iou != spec.baked.get("iou", opts.iou):
            warnings.append(f"'{opts.engine}' has NMS in the graph with conf {spec.baked.get('conf')} and iou "
                            f"{spec.baked.get('iou')} fixed at export: a lower --conf or another --iou has no effect "
                            "(re-export with --nms host to choose them here)")
    if not opts.quiet:
        for w in warnings:
            log(f"warning: {w}")
    return out, journal, warnings


def reconcile_journal(source: Source, journal: Journal) -> Optional[dict[str, list[str]]]:
    """Match the journal to the inputs as they are now (by identity); what changed since the last start."""
    if source.kind != "video":
        return journal.reconcile(it.identity for it in source.items)
    video = source.items[0]  # frames carry the video file's identity: a replaced video runs again
    journal.drop([n for n, r in journal.records.items() if (r.get("size"), r.get("mtime_ns")) != (video.size,
                                                                                                   video.mtime_ns)])
    return None


def warm_up(runner: Runner, spec: ModelSpec, batch: int) -> None:
    """One batch of zeros: allocates and tunes (kept out of the timings) and proves that the model takes the
    input its sidecar describes and returns what the post-processing expects."""
    x = np.zeros((batch, 3, *spec.input_hw), np.float32)
    try:
        outputs = runner.infer({spec.input_name: x})
    except Exception as e:  # the backends raise their own types for a wrong input shape
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise InferError(f"the model does not take a batch of {batch} at input size {spec.input_hw[0]}x"
                         f"{spec.input_hw[1]} as its sidecar describes ({first}): re-export with export.py") from None
    try:
        check_outputs(spec, outputs, batch)
    except ModelError as e:
        raise InferError(str(e)) from None


def _prepare(item: Item, load: Callable[[], tuple[np.ndarray, float]], spec: ModelSpec,
             keep_image: bool) -> _Prepared | dict[str, Any]:
    """Decode and pre-process one input; a skip record (its reason) when it cannot be read."""
    try:
        image, decode_s = load()
        t0 = time.perf_counter()
        tensor, lb = spec.preprocess(image)
        return _Prepared(item, tensor, lb, image if keep_image else None, decode_s, time.perf_counter() - t0)
    except ImageReadError as e:
        return skip_record(item.identity, e.reason)
    except MemoryError:
        return skip_record(item.identity, "out of memory while decoding (image too large)")
    except Exception as e:  # one odd file must not end the run: report it like any unreadable image
        return skip_record(item.identity, f"unexpected {type(e).__name__} while reading: {str(e)[:200]}")


def _raise_source_error(error: Exception) -> NoReturn:
    """Re-raise in the main thread what reading the source hit, as an :class:`InferError` where it is the input's
    fault."""
    if isinstance(error, SourceError):
        raise InferError(str(error))
    if isinstance(error, ImportError):  # a video without PyAV or OpenCV
        raise InferError(str(error), code=3)
    raise error


class _ReadAhead:
    """Decodes and pre-processes the inputs not yet in the journal in a thread pool, ahead of the model.

    A feeder thread walks the source and queues one future per image; the queue is bounded, so reading
    stays at most a few batches ahead. Used as a context manager: leaving it stops the feeder and
    cancels what has not started.
    """

    _END = object()

    def __init__(self, source: Source, journal: Journal, prepare: Callable[[Item, Any], Any], workers: int,
                 batch: int):
        self._source, self._journal, self._prepare = source, journal, prepare
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(2 * batch, 2 * workers))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cat-read")
        self._feeder = threading.Thread(target=self._feed, name="cat-feed", daemon=True)

    def __enter__(self) -> "_ReadAhead":
        self._feeder.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._feeder.join(timeout=5)

    def results(self) -> Iterator[_Prepared | dict[str, Any]]:
        """In source order: a :class:`_Prepared` image or the skip record of one that could not be read."""
        while True:
            entry = self._queue.get()
            if entry is self._END:
                return
            if isinstance(entry, Exception):
                _raise_source_error(entry)
            _, future = entry
            yield future.result()

    def _put(self, entry) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _feed(self) -> None:
        try:
            for item, load in self._source:
                if self._stop.is_set():
                    return
                if self._journal.done(item.identity):
                    continue
                if not self._put((item, self._pool.submit(self._prepare, item, load))):
                    return
        except Exception as e:  # e.g. a video that cannot be opened: surface it in the main thread
            self._put(e)
        finally:
            self._put(self._END)


class _Batches:
    """Groups prepared images into batches, keeps up to ``runner.max_in_flight`` of them on the model, and
    turns each finished one into journal records (and per-image files); counts and times every stage."""

    def __init__(self, runner: Runner, spec: ModelSpec, opts: DetectOptions, journal: Journal, batch: int,
                 classes, times: StageTimes, bar: tqdm):
        self._runner, self._spec, self._opts, self._journal = runner, spec, opts, journal
        self._batch, self._classes, self._times, self._bar = batch, classes, times, bar
        self._group: list[_Prepared] = []
        self._pending: deque = deque()
        self.processed = 0

    def add(self, res: _Prepared | dict[str, Any]) -> None:
        """Journal a skip record at once; queue a prepared image, submitting the batch once it is full."""
        if isinstance(res, dict):
            self._skip(res)
            return
        self._group.append(res)
        if len(self._group) == self._batch:
            self._submit(self._group)
            self._group = []

    def flush(self) -> None:
        """Submit the last, partial batch and wait for every batch in flight."""
        if self._group:
            self._submit(self._group)
            self._group = []
        while self._pending:
            self._finish(*self._pending.popleft())

    def discard(self) -> None:
        """Drop the batches in flight (after an interrupt): their images run again on resume."""
        self._pending.clear()

    def _skip(self, rec: dict[str, Any]) -> None:
        self._journal.add([rec])
        self._bar.update(1)
        if not self._opts.quiet:
            self._bar.write(f"skipped {rec['name']}: {rec['reason']}", file=sys.stderr)

    def _submit(self, group: list[_Prepared]) -> None:
        x = np.stack([p.tensor for p in group])
        if self._spec.static_batch and len(x) < self._batch:  # static engines take exactly `batch`: repeat the last
            x = np.concatenate([x, np.repeat(x[-1:], self._batch - len(x), axis=0)])
        self._pending.append((group, self._runner.submit({self._spec.input_name: x})))
        while len(self._pending) >= self._runner.max_in_flight:
            self._finish(*self._pending.popleft())

    def _finish(self, group: list[_Prepared], ticket) -> None:
        outputs = self._runner.collect(ticket)
        self._times.add("inference", self._runner.last_inference_time())
        t0 = time.perf_counter()
        records = self._records(group, outputs)
        self._times.add("postprocess", time.perf_counter() - t0)
        self._journal.add(records)
        for p in group:
            self._times.add("decode", p.decode_s)
            self._times.add("preprocess", p.pre_s)
        self.processed += len(group)
        self._bar.update(len(group))
        if self._opts.stop_after is not None and self.processed >= self._opts.stop_after:
            raise KeyboardInterrupt

    def _records(self, group: list[_Prepared], outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Detections of one batch in original image pixels, as journal records; writes the per-image files."""
        o, spec, n = self._opts, self._spec, len(group)
        outputs = {k: v[:n] for k, v in outputs.items()}
        dets = detections_from_outputs(outputs, spec.input_hw, spec.detector, o.conf, o.iou, o.max_det, self._classes)
        records = []
        for p, d in zip(group, dets):
            boxes = boxes_to_original(d["boxes"], p.lb)
            rec = done_record(p.item.identity, p.lb.src_size, boxes, d["scores"], d["labels"])
            if p.image is not None or o.save_txt or o.save_json:
                write_image_files(Path(o.out), rec, spec.class_names, p.image, o.save_txt, o.save_json)
            records.append(rec)
        return records


def detect_source(source: Source, runner: Runner, spec: ModelSpec, opts: DetectOptions, journal: Journal,
                  batch: int, classes=None, log: Callable[[str], None] = print,
                  gt: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The run loop over an opened ``source`` with an entered ``runner``; returns the summary dict.

    Reads ahead in a thread pool (:class:`_ReadAhead`) while the model works on the batches in
    flight (:class:`_Batches`); an interrupt (or ``opts.stop_after``) ends the run with what the
    journal holds. ``gt``: the ``--annotations`` document, for COCO mAP at the end."""
    changes = reconcile_journal(source, journal)
    resumed = len(journal.records)
    known = source.count
    if known is None or resumed < known:
        warm_up(runner, spec, batch)
    times = StageTimes()
    bar = tqdm(total=known, initial=resumed if known else 0, unit="img", disable=opts.quiet,
               desc="detect", dynamic_ncols=True, file=sys.stderr)
    batches = _Batches(runner, spec, opts, journal, batch, classes, times, bar)
    prepare = partial(_prepare, spec=spec, keep_image=opts.save_images)
    interrupted = False
    t_start = time.perf_counter()
    try:
        with _ReadAhead(source, journal, prepare, max(1, int(opts.workers)), batch) as reader:
            for res in reader.results():
                batches.add(res)
            batches.flush()
    except KeyboardInterrupt:
        interrupted = True
        batches.discard()
    finally:
        bar.close()
    wall = time.perf_counter() - t_start
    summary = summarize_run(source, spec, opts, journal, batch, times, batches.processed, resumed, wall,
                            interrupted, runner, gt)
    summary["source_changes"] = changes
    summary["warnings"] = source_changes_warning(changes, Path(opts.out))
    return summary


def source_changes_warning(changes: Optional[dict[str, list[str]]], out: Path) -> list[str]:
    """The warning (a list of at most one) when :func:`reconcile_journal` found added/removed/modified inputs."""
    if not changes or not any(changes.values()):
        return []
    return [f"the inputs changed since the last run in '{out}': {len(changes['added'])} added, "
            f"{len(changes['removed'])} removed, {len(changes['modified'])} modified; new and "
            "modified ones were run, removed ones left detections.json"]


def summarize_run(source: Source, spec: ModelSpec, opts: DetectOptions, journal: Journal, batch: int,
                  times: StageTimes, processed: int, resumed: int, wall: float, interrupted: bool, runner,
                  gt: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The run summary from the journal (and, unless interrupted, ``OUT/detections.json`` written from it in
    the source's order): what every runner of ``infer.py`` reports. ``runner`` gives ``name`` and ``providers``."""
    out = Path(opts.out)
    recs = journal.records
    order = [it.name for it in source.items] if source.kind != "video" else None
    ids = image_ids(recs, order)
    done = [r for r in recs.values() if r["status"] == "done"]
    skipped = sorted((r for r in recs.values() if r["status"] == "skipped"), key=lambda r: ids[r["name"]])
    summary: dict[str, Any] = {
        "model": str(opts.engine),
        "backend": runner.name,
        "providers": list(getattr(runner, "providers", []) or []),
        "fused_ops": getattr(runner, "fused_ops", None),  # who runs the fused CAT nodes: "compiled", "twin", None
        "batch": batch,
        "input_size": list(spec.input_hw),
        "source": {"kind": source.kind, "path": source.description},
        "images": {"total": source.count if source.count is not None else len(recs), "done": len(done),
                   "skipped": len(skipped), "resumed": resumed, "ignored": len(source.ignored)},
        "skipped": [{"id": ids[r["name"]], "file": r["name"], "reason": r["reason"]} for r in skipped],
        "ignored": [{"file": f, "reason": why} for f, why in source.ignored],
        "processed": processed,
        "wall_s": round(wall, 3),
        "throughput_img_s": round(processed / wall, 2) if processed and wall > 0 else None,
        "stages": times.summary(),
        "interrupted": interrupted,
        "options": {k: v for k, v in asdict(opts).items() if k != "stop_after"},
        "outputs": {"detections": str(out / "detections.json"), "summary": str(out / "summary.json")},
    }
    if interrupted:
        return summary
    info = {"model": Path(opts.engine).name, "conf": opts.conf, "iou": opts.iou, "max_det": opts.max_det,
            "classes": parse_classes(opts.classes, spec.class_names), "input_size": list(spec.input_hw),
            "letterbox": spec.letterbox, "boxes": "original image pixels, bbox = [x, y, w, h]"}
    doc = coco_document(recs, spec.class_names, info, order)
    write_json(out / "detections.json", doc)
    summary["detections"] = len(doc["annotations"])
    if gt is not None:
        summary["accuracy"] = _accuracy(gt, doc, spec.class_names)
    return summary


def _accuracy(gt: dict[str, Any], doc: dict[str, Any], class_names) -> dict[str, Any]:
    """COCO mAP of ``doc`` against the annotations ``gt`` (checked at the start), images matched by file name
    (relative path, then base name)."""
    gt_images, gt_cats = gt["images"], gt["categories"]
    by_path = {str(im["file_name"]).replace("\\", "/"): im["id"] for im in gt_images}
    by_base = {}
    for im in gt_images:
        by_base.setdefault(Path(str(im["file_name"])).name, []).append(im["id"])
    cat_by_name = {c["name"]: c["id"] for c in gt_cats}
    if all(n in cat_by_name for n in class_names):
        cat_map = {i + 1: cat_by_name[n] for i, n in enumerate(class_names)}
    else:
        cat_map = {i + 1: i + 1 for i in range(len(class_names))}
    id_map = {}
    for im in doc["images"]:
        name = im["file_name"]
        gid = by_path.get(name)
        if gid is None and len(by_base.get(Path(name).name, [])) == 1:
            gid = by_base[Path(name).name][0]
        if gid is not None:
            id_map[im["id"]] = gid
    results = [{"image_id": id_map[a["image_id"]], "category_id": cat_map[a["category_id"]], "bbox": a["bbox"],
                "score": a["score"]} for a in doc["annotations"] if a["image_id"] in id_map]
    if not id_map:
        return {"map": 0.0, "map50": 0.0, "map75": 0.0, "images_matched": 0,
                "note": "no image file name matches the annotations"}
    m = coco_map(gt, results, image_ids=sorted(set(id_map.values())))
    return {**{k: round(v, 5) for k, v in m.items()}, "images_matched": len(id_map)}
