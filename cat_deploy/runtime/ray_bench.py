"""Images/s of ``infer.py`` in one process vs ``infer.py --ray`` with 1 and 2 actors, side by side.

    python -m cat_deploy.runtime.ray_bench --out docs/benchmarks      # 200 scenes, one round (~5-10 min here)
    python -m cat_deploy.runtime.ray_bench --images 50 --rounds 2

Generates the synthetic scenes once (``cat_deploy.data.synthetic.generate_dataset``, 1242x375
JPEG, seed 2024), exports the demo detector to ONNX (dynamic batch), then runs each
configuration as the user would, a fresh ``python infer.py ...`` process each, rounds
interleaved. Reports per configuration: the command's wall time (start-up, imports, Ray
cluster, actors, everything), the run's images/s as ``summary.json`` gives it (for Ray from
the first submitted image, so including actor start-up and model load), the seconds until the
first Ray batch came back, and the rate over the second half of the images (one process: the
run's rate; Ray: by then the decode tasks, which ran while the actors started, are mostly done,
so this is about the detection actors' own rate: an upper bound for a long run). Checks that every configuration wrote the same
``detections.json``. Writes ``ray_batch.md`` / ``.json`` to ``--out``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .. import cli
from ..core.files import atomic_write
from ..core.optional import is_available
from ..data.synthetic import generate_dataset

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {"infer.py (one process)": [], "infer.py --ray, 1 actor": ["--ray", "--ray-actors", "1"],
           "infer.py --ray, 2 actors": ["--ray", "--ray-actors", "2"]}
STAGES = ("decode", "preprocess", "inference", "postprocess")


def _loadavg() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _prepare(work: Path, n: int, batch: int) -> tuple[Path, Path]:
    """The scenes (generated once) and the demo detector's ONNX (exported once with export.py, dynamic batch)."""
    scenes = work / f"scenes_{n}"
    if not (scenes / "annotations.json").is_file():
        generate_dataset(scenes, n, seed=2024)
    onnx = work / "export" / "cat.onnx"
    if not onnx.is_file():
        cmd = [sys.executable, str(ROOT / "export.py"), "--ckpt", str(ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"),
               "--out", str(onnx.parent), "--dynamic", "--batch", str(max(batch, 8)), "--no-validate"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise RuntimeError(f"export.py failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    return scenes / "images", onnx


def _run(name: str, flags: list[str], images: Path, onnx: Path, out: Path, batch: int) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "infer.py"), "--engine", str(onnx), "--images", str(images), "--out", str(out),
           "--batch", str(batch), "--device", "cpu", "--quiet", "--no-resume", *flags]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    s = json.loads((out / "summary.json").read_text())
    row = {"config": name, "command": " ".join(["python infer.py", "--engine", "ONNX", "--images", "SCENES", "--batch",
                                                str(batch), "--device cpu", *flags]),
           "images": s["processed"], "command_wall_s": round(wall, 2), "run_wall_s": s["wall_s"],
           "run_img_s": s["throughput_img_s"], "end_to_end_img_s": round(s["processed"] / wall, 2),
           "stages_ms_p50": {k: v.get("p50") for k, v in s["stages"].items()},
           "detections_sha256": hashlib.sha256((out / "detections.json").read_bytes()).hexdigest()}
    ray = s.get("ray")
    if ray:
        first = ray.get("first_result_s") or 0.0
        row.update(first_result_s=first, threads_per_actor=ray["threads"], steady_img_s=ray["second_half_img_s"])
    else:  # the single-process run's wall starts after model load and warm-up, with reading pipelined from the start
        row["steady_img_s"] = s["throughput_img_s"]
    return row


def _median(rows: list[dict[str, Any]], key: str):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(vals), 2) if vals else None


def main(argv=None) -> int:
    return cli.run("python -m cat_deploy.runtime.ray_bench", _main, argv)


def _main(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m cat_deploy.runtime.ray_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=200, help="synthetic scenes (default: %(default)s)")
    p.add_argument("--batch", type=int, default=4, help="images per model call (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians reported (default: %(default)s)")
    p.add_argument("--work", default="runs/ray_bench", help="scenes, export and run outputs")
    p.add_argument("--out", help="write ray_batch.md/.json here (e.g. docs/benchmarks)")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    if not is_available("ray"):
        print("ray_bench: error: needs Ray: pip install 'cat-deploy[ray]'", file=sys.stderr)
        return cli.MISSING_DEPENDENCY
    work = Path(a.work)
    images, onnx = _prepare(work, a.images, a.batch)
    load = {"before": _loadavg()}
    runs = []
    for r in range(a.rounds):
        for name, flags in CONFIGS.items():
            row = _run(name, flags, images, onnx, work / f"out_{len(runs)}", a.batch)
            row["round"] = r
            print(json.dumps(row), flush=True)
            runs.append(row)
    load["after"] = _loadavg()
    same = len({r["detections_sha256"] for r in runs}) == 1
    table = []
    for name in CONFIGS:
        rows = [r for r in runs if r["config"] == name]
        table.append({"config": name, **{k: _median(rows, k) for k in ("command_wall_s", "end_to_end_img_s",
                                                                         "run_img_s", "steady_img_s", "first_result_s")}})
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "images": a.images, "batch": a.batch, "rounds": a.rounds,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU",
            "loadavg": load, "identical_detections": same,
            "command": "python -m cat_deploy.runtime.ray_bench " + " ".join(sys.argv[1:] if argv is None else argv)}
    print(json.dumps({**meta, "table": table}, indent=1))
    if a.out:
        _write(Path(a.out), meta, table, runs)
    return cli.OK if same else cli.CHECK_FAILED


def _write(out: Path, meta, table, runs) -> None:
    """``ray_batch.json`` (every number) and ``ray_batch.md`` (the tables and what they show) into ``out``."""
    atomic_write(out / "ray_batch.json", lambda t: Path(t).write_text(json.dumps({**meta, "table": table,
                                                                                  "runs": runs}, indent=2)))
    text = _markdown(meta, table, _stage_medians(runs))
    atomic_write(out / "ray_batch.md", lambda t: Path(t).write_text(text))


def _stage_medians(runs) -> dict[str, dict[str, Any]]:
    """Per configuration and stage, the median over the rounds of each run's median stage time (ms)."""
    return {name: {k: _median([dict(v=r["stages_ms_p50"].get(k)) for r in runs if r["config"] == name], "v")
                   for k in STAGES} for name in CONFIGS}


def _markdown(meta, table, med) -> str:
    """The report: results table, per-stage table, and the reading of both (numbers taken from them)."""
    names = list(CONFIGS)
    first = [r["first_result_s"] for r in table]
    outside = [round(r["command_wall_s"] - meta["images"] / r["run_img_s"], 1) for r in table]  # not in the run
    stage = {k: [med[n][k] for n in names] for k in ("inference", "preprocess", "postprocess")}
    cpu_ms = round(med[names[2]]["decode"] + med[names[2]]["preprocess"], 1)  # least contended: 1 thread per actor
    per_core = int(1000 / cpu_ms) if cpu_ms else "?"
    stages = "\n".join(f"| {name} | " + " | ".join(str(med[name][k]) for k in STAGES) + " |" for name in CONFIGS)
    rows = "\n".join(f"| {r['config']} | {r['command_wall_s']} | {r['end_to_end_img_s']} | {r['run_img_s']} | "
                     f"{r['steady_img_s']} | {r['first_result_s'] if r['first_result_s'] is not None else '-'} |"
                     for r in table)
    return f"""# Batch detection: one process vs Ray Data

Command: `{meta['command']}` ({meta['date']}); {meta['images']} synthetic scenes (1242x375 JPEG), demo detector
(ONNX, ONNX Runtime CPU), batch {meta['batch']}, {meta['rounds']} round(s), medians. Machine: {meta['machine']}, shared
with other jobs: load average (1/5/15 min) {meta['loadavg']['before']} before, {meta['loadavg']['after']} after.
Same `detections.json` from every configuration: **{'yes' if meta['identical_detections'] else 'NO'}**.

| configuration | command wall (s) | end to end (img/s) | run (img/s) | second half (img/s) | first result after (s) |
|---|---:|---:|---:|---:|---:|
{rows}

Per-stage medians (ms; decode and preprocess per image, inference and postprocess per batch):

| configuration | decode | preprocess | inference | postprocess |
|---|---:|---:|---:|---:|
{stages}

"end to end" divides the images by the command's whole wall time (interpreter, imports, Ray cluster start,
actors, model load); "run" is `summary.json`'s throughput (for Ray from the first submitted image, so it
includes starting the actors); "second half" is the rate over the second half of the images: for one process
the same pipeline as the whole run; for Ray the decode tasks ran while the actors started and are mostly done by
then, so it is close to the detection actors' own rate, an upper bound for what a long run reaches here.

## What limits scaling on this machine

- **Fixed start-up.** Outside its run, the one-process command spent {outside[0]} s (interpreter, imports, model
  load); with Ray {outside[1]} s (1 actor) and {outside[2]} s (2 actors): starting the local cluster and the
  driver's imports. Inside the run, each actor process imports the runtime (ONNX Runtime; no PyTorch), loads the
  model and warms it up: the first batch came back after {first[1]} s with one actor and {first[2]} s with two.
  On a {meta['images']}-image job that start-up is most of the difference in the "end to end" column.
- **Two cores for everything.** One ONNX Runtime session with two threads already fills both cores; a second
  actor does not add compute, it splits the same cores (one thread each), and decoding runs in Ray tasks on the
  same cores too. Once started, Ray's rate ("second half": {table[1]['steady_img_s']} and
  {table[2]['steady_img_s']} img/s) is about the one-process rate ({table[0]['steady_img_s']} img/s), not a
  multiple of it: the per-stage times show the work moving, not shrinking.
- **Stage times are wall times under contention.** In one process the reader threads (decode, letterbox) and
  ONNX Runtime's threads overlap on two cores, which stretches each stage (inference {stage['inference'][0]} ms
  per batch there, {stage['inference'][1]} and {stage['inference'][2]} ms in the Ray actors; preprocess
  {stage['preprocess'][0]} ms per image there, {stage['preprocess'][1]} and {stage['preprocess'][2]} ms in the
  Ray tasks) while the pipeline's throughput is what counts.
- **A shared machine.** Other jobs ran during the measurement (load averages above, over the 2 cores), so
  absolute rates are noisy; compare configurations within one run.

## The expected picture on N GPUs (not measured here)

Each actor holds one GPU (`num_gpus=1`, one actor per GPU by default) with a TensorRT engine; decoding and
letterboxing run as CPU tasks on every CPU of the cluster, including nodes without GPUs. The network then stops
being the bound and the CPU side sets the rate: decode + letterbox of one 1242x375 JPEG took about
{cpu_ms} ms in the Ray tasks above (wall time under that load: an idle core is faster), roughly {per_core} images/s
per core, so a GPU that detects K images/s needs about K/{per_core} cores of decoding. Throughput is about
min(N x engine rate, decode cores x {per_core} img/s, storage read rate), and the start-up of
{min(outside[1:]) + min(first[1:]):.0f}-{max(outside[1:]) + max(first[1:]):.0f} s here vanishes over a fleet's millions of frames. If decoding is the bound, GPU JPEG decoding (nvJPEG, DALI) is the
next step. The driver writes every result to one journal (one fsync per batch); its rate was not measured
here; at fleet scale the input list can be sharded over several drivers, one output folder each.
"""


if __name__ == "__main__":
    sys.exit(main())
