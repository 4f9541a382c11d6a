"""What the detection runner writes: journal, COCO detections, per-image files, run summary.

Resumable by design: each finished batch appends one JSON line per image to
``OUT/.partial/journal.jsonl`` (fsync'd; a line cut by a crash is dropped on the next
start). Records are keyed by the input's identity (name relative to the source, size,
mtime: :func:`~cat_deploy.runtime.source.input_identity`), never by its position, so a
rerun skips exactly the inputs it already did, even when files were added, removed or
edited in between (removed ones leave ``detections.json``, edited ones run again). The
final ``detections.json`` is assembled from the journal in source order, so an
interrupted-and-resumed run writes the same bytes as an uninterrupted one on the same
inputs. Every other file is written atomically (:func:`cat_deploy.core.files.atomic_write`).
Per-image files are named after the input's full name (:func:`~cat_deploy.runtime.source.output_name`),
so each input has its own and a new input never renames another's.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..core.files import atomic_write, write_json
from ..data.coco_eval import to_coco_results
from .source import output_name

__all__ = ["Journal", "coco_document", "image_ids", "write_json", "write_image_files", "draw_detections",
           "StageTimes", "format_summary"]


class Journal:
    """Per-input results of a run, one JSON line each, after a header line holding the run's ``fingerprint``
    and the identities of the inputs it last started on.

    ``records`` maps input name -> record (``status`` ``"done"`` or ``"skipped"``, and the input's
    ``name, size, mtime_ns``). :meth:`done` says whether an input with this identity is already
    journaled; :meth:`reconcile` compares this run's inputs with the last start, drops the records of
    inputs removed or changed since, and says what changed. A journal whose fingerprint differs from
    this run's (other model, thresholds, inputs or outputs) is moved to ``journal.previous.jsonl``
    and started afresh; ``reset_reason`` then names the settings that changed.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: dict[str, Any], resume: bool = True):
        self.path = Path(path)
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self.records: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, list] = {}  # name -> [size, mtime_ns] of the inputs at the last start
        self.reset_reason: Optional[str] = None
        self._file = None
        lines = self._read() if resume else []
        if lines:
            old = lines[0].get("fingerprint")
            if old == self.fingerprint:
                self.inputs = lines[0].get("inputs") if isinstance(lines[0].get("inputs"), dict) else {}
                for rec in lines[1:]:
                    if isinstance(rec.get("name"), str) and rec.get("status") in ("done", "skipped"):
                        self.records[rec["name"]] = rec
            else:
                changed = sorted(k for k in set(old or {}) | set(self.fingerprint)
                                 if (old or {}).get(k) != self.fingerprint.get(k))
                self.reset_reason = ", ".join(changed)
                os.replace(self.path, self.path.with_name("journal.previous.jsonl"))  # kept, not lost
        self._rewrite()

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        with open(self.path, errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interrupt
                if isinstance(rec, dict):
                    out.append(rec)
        return out if out and "fingerprint" in out[0] else []

    def _rewrite(self) -> None:
        """Header + valid records only, atomically (drops a cut last line); appends go to the new file."""
        if self._file is not None:
            self._file.close()
        lines = [json.dumps({"fingerprint": self.fingerprint, "inputs": self.inputs})]
        lines += [json.dumps(self.records[k]) for k in sorted(self.records)]
        atomic_write(self.path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
        self._file = open(self.path, "a")

    def done(self, identity: dict[str, Any]) -> bool:
        """Whether the input with this identity (``name, size, mtime_ns``) is journaled, as done or skipped."""
        rec = self.records.get(identity["name"])
        return rec is not None and (rec.get("size"), rec.get("mtime_ns")) == (identity["size"], identity["mtime_ns"])

    def reconcile(self, identities: Iterable[dict[str, Any]]) -> Optional[dict[str, list[str]]]:
        """Match the journal to this run's inputs: records of removed or changed inputs are dropped (changed
        ones run again). Returns the names ``added``, ``removed`` and ``modified`` since the last start,
        or None when the journal was empty (a fresh run)."""
        current = {i["name"]: [i["size"], i["mtime_ns"]] for i in identities}
        known = dict(self.inputs)
        for name, rec in self.records.items():
            known.setdefault(name, [rec.get("size"), rec.get("mtime_ns")])
        changes = None
        if known:
            changes = {"added": [n for n in current if n not in known],
                       "removed": sorted(n for n in known if n not in current),
                       "modified": [n for n in current if n in known and known[n] != current[n]]}
            for name in changes["removed"] + changes["modified"]:
                self.records.pop(name, None)
        self.inputs = current
        self._rewrite()
        return changes

    def drop(self, names: Iterable[str]) -> None:
        """Forget the records of ``names`` (e.g. frames of a video file that was replaced)."""
        names = [n for n in names if n in self.records]
        for name in names:
            del self.records[name]
        if names:
            self._rewrite()

    def __contains__(self, name: str) -> bool:
        return name in self.records

    def add(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        self._file.write("".join(json.dumps(r) + "\n" for r in records))
        self._file.flush()
        os.fsync(self._file.fileno())
        for r in records:
            self.records[r["name"]] = r

    def close(self) -> None:
        self._file.close()


def done_record(identity: dict[str, Any], size_hw: Sequence[int], boxes: np.ndarray, scores: np.ndarray,
                labels: np.ndarray) -> dict[str, Any]:
    """Journal record of one image (``identity`` from :func:`~cat_deploy.runtime.source.input_identity`);
    boxes xyxy in original image pixels, labels 0-based."""
    return {**identity, "status": "done", "height": int(size_hw[0]), "width": int(size_hw[1]),
            "boxes": np.asarray(boxes, np.float64).reshape(-1, 4).tolist(),
            "scores": np.asarray(scores, np.float64).reshape(-1).tolist(),
            "labels": np.asarray(labels, np.int64).reshape(-1).tolist()}


def skip_record(identity: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**identity, "status": "skipped", "reason": reason}


def image_ids(records: dict[str, dict[str, Any]], order: Optional[Sequence[str]] = None) -> dict[str, int]:
    """COCO image id of each journaled name: its 1-based position in ``order`` (the source's inputs, skipped
    ones included), names outside ``order`` after them in sorted order."""
    ids = {name: i + 1 for i, name in enumerate(order or [])}
    for name in sorted(n for n in records if n not in ids):
        ids[name] = len(ids) + 1
    return ids


def coco_document(records: dict[str, dict[str, Any]], class_names: Sequence[str],
                  info: Optional[dict[str, Any]] = None, order: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """COCO-style detections of all done images: ``images``, ``categories`` (id = class index + 1) and
    ``annotations`` (COCO result fields ``image_id, category_id, bbox [x, y, w, h], score`` in original
    image pixels, plus ``id``, ``file_name``, ``category_name``, ``area``, ``iscrowd``). Loads with
    ``COCO(path)``; ``doc["annotations"]`` also works as a COCO results list."""
    cat_ids = list(range(1, len(class_names) + 1))
    ids = image_ids(records, order)
    images, anns = [], []
    for name in sorted(records, key=ids.__getitem__):
        r, image_id = records[name], ids[name]
        if r["status"] != "done":
            continue
        images.append({"id": image_id, "file_name": r["name"], "width": r["width"], "height": r["height"]})
        for res in to_coco_results(image_id, np.asarray(r["boxes"]).reshape(-1, 4), np.asarray(r["scores"]),
                                   np.asarray(r["labels"], int), cat_ids):
            x, y, w, h = res["bbox"]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "file_name": r["name"],
                         "category_id": res["category_id"], "category_name": class_names[res["category_id"] - 1],
                         "bbox": res["bbox"], "area": round(w * h, 2), "score": res["score"], "iscrowd": 0})
    return {"info": info or {}, "images": images,
            "categories": [{"id": i, "name": n} for i, n in zip(cat_ids, class_names)], "annotations": anns}


_PALETTE = [(255, 56, 56), (255, 157, 151), (255, 112, 31), (255, 178, 29), (207, 210, 49), (72, 249, 10),
            (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187), (44, 153, 168), (0, 194, 255),
            (52, 69, 147), (100, 115, 255), (0, 24, 236), (132, 56, 255), (82, 0, 133), (203, 56, 255)]


def draw_detections(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                    class_names: Sequence[str]):
    """A PIL image of ``image`` (RGB uint8) with boxes and ``name score`` labels drawn."""
    img = Image.fromarray(image)
    d = ImageDraw.Draw(img)
    h, w = image.shape[:2]
    lw = max(1, round(min(h, w) / 250))
    try:
        font = ImageFont.load_default(size=max(10, round(min(h, w) / 30)))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for (x1, y1, x2, y2), s, c in zip(np.asarray(boxes, float).reshape(-1, 4), scores, labels):
        color = _PALETTE[int(c) % len(_PALETTE)]
        d.rectangle([x1, y1, x2, y2], outline=color, width=lw)
        text = f"{class_names[int(c)] if int(c) < len(class_names) else int(c)} {float(s):.2f}"
        tx0, ty0, tx1, ty1 = d.textbbox((0, 0), text, font=font)
        tw, th = tx1 - tx0, ty1 - ty0 + 2
        ty = y1 - th if y1 - th >= 0 else y1
        d.rectangle([x1, ty, x1 + tw + 2, ty + th], fill=color)
        d.text((x1 + 1, ty - ty0 + 1), text, fill=(255, 255, 255), font=font)
    return img


_SAVE_FORMATS = {".jpg": ("JPEG", {"quality": 90}), ".jpeg": ("JPEG", {"quality": 90}), ".png": ("PNG", {"compress_level": 1}),
                 ".bmp": ("BMP", {}), ".webp": ("WEBP", {"quality": 90})}


def write_image_files(out: Path, record: dict[str, Any], class_names: Sequence[str],
                      image: Optional[np.ndarray], save_txt: bool, save_json: bool) -> None:
    """Per-image outputs of input NAME (``record["name"]``): ``images/NAME`` (annotated, in the input's
    format; video frames ``.jpg``), ``labels/NAME.txt`` (``class_id class_name score x1 y1 x2 y2`` per
    line) and ``labels/NAME.json``."""
    name = record["name"]
    boxes = np.asarray(record["boxes"]).reshape(-1, 4)
    scores, labels = record["scores"], record["labels"]
    if image is not None:
        img = draw_detections(image, boxes, scores, labels, class_names)
        path = out / "images" / output_name(name)
        fmt, kw = _SAVE_FORMATS[path.suffix.lower()]
        atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **kw))
    if save_txt:
        lines = [f"{c} {class_names[c]} {s:.5f} {b[0]:.2f} {b[1]:.2f} {b[2]:.2f} {b[3]:.2f}"
                 for b, s, c in zip(boxes, scores, labels)]
        text = "".join(line + "\n" for line in lines)
        atomic_write(out / "labels" / f"{name}.txt", lambda tmp: Path(tmp).write_text(text))
    if save_json:
        dets = [{"class_id": int(c), "class_name": class_names[c], "score": round(float(s), 5),
                 "bbox_xyxy": [round(float(v), 2) for v in b]} for b, s, c in zip(boxes, scores, labels)]
        write_json(out / "labels" / f"{name}.json", {"file_name": name, "width": record["width"],
                                                     "height": record["height"], "detections": dets}, indent=1)


class StageTimes:
    """Seconds per stage sample; ``summary()`` gives count, mean and p50/p90/p99 in milliseconds."""

    STAGES = ("decode", "preprocess", "inference", "postprocess")
    UNITS = {"decode": "image", "preprocess": "image", "inference": "batch", "postprocess": "batch"}

    def __init__(self):
        self.samples: dict[str, list[float]] = {s: [] for s in self.STAGES}

    def add(self, stage: str, seconds: float) -> None:
        self.samples[stage].append(float(seconds))

    def summary(self) -> dict[str, dict[str, Any]]:
        out = {}
        for stage, xs in self.samples.items():
            a = np.asarray(xs, np.float64) * 1000.0
            row: dict[str, Any] = {"unit": f"ms/{self.UNITS[stage]}", "count": int(a.size)}
            if a.size:
                p50, p90, p99 = np.percentile(a, [50, 90, 99])
                row.update(mean=round(float(a.mean()), 3), p50=round(float(p50), 3), p90=round(float(p90), 3),
                           p99=round(float(p99), 3))
            out[stage] = row
        return out


def format_summary(s: dict[str, Any]) -> str:
    """The printed table of a run summary (see :func:`cat_deploy.runtime.detect.run_detection`)."""
    fused = {"compiled": ", fused CAT nodes: compiled operators", "twin": ", fused CAT nodes: Python twin (slow)"}
    rows = [f"model      {s['model']} ({s['backend']}{', ' + ', '.join(s['providers']) if s.get('providers') else ''}"
            f"{fused.get(s.get('fused_ops'), '')}, batch {s['batch']})",
            f"images     {s['images']['total']} total: {s['images']['done']} done "
            f"({s['images']['resumed']} from an earlier run), {s['images']['skipped']} skipped"
            + (f", {s['images']['ignored']} other files not read" if s['images'].get('ignored') else "")]
    for sk in s["skipped"]:
        rows.append(f"  skipped  {sk['file']}: {sk['reason']}")
    ignored = s.get("ignored") or []
    for ig in ignored[:10]:
        rows.append(f"  not read {ig['file']}: {ig['reason']}")
    if len(ignored) > 10:
        rows.append(f"  not read ... and {len(ignored) - 10} more files (listed in summary.json)")
    rows.append(f"{'stage':<12}{'unit':>10}{'count':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'mean':>9}")
    for stage, r in s["stages"].items():
        if r["count"]:
            rows.append(f"{stage:<12}{r['unit']:>10}{r['count']:>7}{r['p50']:>9.2f}{r['p90']:>9.2f}{r['p99']:>9.2f}"
                        f"{r['mean']:>9.2f}")
        else:
            rows.append(f"{stage:<12}{r['unit']:>10}{0:>7}{'-':>9}{'-':>9}{'-':>9}{'-':>9}")
    if s.get("throughput_img_s") is not None:
        rows.append(f"throughput {s['throughput_img_s']:.1f} images/s ({s['processed']} images in {s['wall_s']:.2f} s)")
    acc = s.get("accuracy")
    if acc:
        rows.append(f"COCO mAP   {acc['map']:.4f}  mAP@0.5 {acc['map50']:.4f}  mAP@0.75 {acc['map75']:.4f} "
                    f"({acc['images_matched']} images matched by file name)")
    for w in s.get("warnings", []):
        rows.append(f"warning    {w}")
    if s.get("interrupted"):
        rows.append("interrupted: rerun the same command to resume")
    else:
        rows.append(f"wrote      {s['outputs']['detections']}, {s['outputs']['summary']}")
    return "\n".join(rows)
