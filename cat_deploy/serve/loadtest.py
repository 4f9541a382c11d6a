"""Bounded load test of a served detector: N concurrent clients, each sending a fixed number of requests.

    python -m cat_deploy.serve.loadtest --out docs/benchmarks                # export the demo, serve, measure, stop
    python -m cat_deploy.serve.loadtest --url 127.0.0.1:8001 --protocol grpc # a server that is already running

Without ``--url`` it exports the demo detector with ``export.py`` (dynamic batch 8, its Triton
repository with ``--triton-backend python``), starts the Triton server bundled with nvidia-pytriton
on 127.0.0.1 in the serve environment (``--python``; see :func:`cat_deploy.serve.server.serve_python`),
runs the load for each protocol and client count, and stops the server. The clients run here. Every
client sends ``--requests`` images (one per request, the sample images in turn) and waits for
each answer; the run ends when all have answered or failed, or after ``--timeout`` seconds.
Reports throughput, latency p50/p90/p99, failed and lost requests, and how many network runs
served how many images (dynamic batching), as ``triton_load.md`` / ``.json`` in ``--out``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .. import cli
from ..core.errors import MissingDependency
from ..core.files import atomic_write
from ..data.synthetic import render_scene
from .client import RequestFailed, TritonDetector
from .server import ServeError, TritonServer

__all__ = ["run_load", "main"]

ROOT = Path(__file__).resolve().parents[2]


def run_load(url: str, protocol: str, images: Sequence[bytes], clients: int, requests: int,
             timeout_s: float = 600.0, model: str = "cat_detect", stats_model: Optional[str] = "cat_detect_net"
             ) -> dict[str, Any]:
    """``clients`` threads, each with its own connection, send ``requests`` single-image requests back to back.

    Returns counts (``sent``, ``ok``, ``failed``, ``lost`` = never answered before the deadline),
    ``throughput_rps``, latency ``p50/p90/p99/mean_ms`` of the answered ones, the first errors, and
    the ``stats_model``'s images per network run over the load (>1 means requests were batched).
    """
    lat: list[float] = []
    errors: list[str] = []
    sent = [0] * clients
    lock = threading.Lock()
    deadline = time.monotonic() + timeout_s
    start = threading.Barrier(clients + 1)

    def worker(k: int):
        with TritonDetector(url, protocol, model, timeout_s=max(1.0, timeout_s)) as det:
            try:
                start.wait(timeout=60)
            except threading.BrokenBarrierError:
                return
            for i in range(requests):
                if time.monotonic() > deadline:
                    return
                data = images[(k * requests + i) % len(images)]
                t0 = time.perf_counter()
                sent[k] += 1
                try:
                    det.detect([data])
                    with lock:
                        lat.append(time.perf_counter() - t0)
                except (RequestFailed, OSError) as e:
                    with lock:
                        errors.append(str(e)[:200])

    with TritonDetector(url, protocol, model) as probe:
        before = probe.statistics(stats_model) if stats_model else None
        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
        for t in threads:
            t.start()
        try:
            start.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        t0 = time.perf_counter()
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()) + 5)
        wall = time.perf_counter() - t0
        after = probe.statistics(stats_model) if stats_model else None
    a = np.asarray(lat) * 1000
    total = clients * requests
    res: dict[str, Any] = {
        "protocol": protocol, "clients": clients, "requests_per_client": requests, "sent": sum(sent),
        "ok": len(lat), "failed": len(errors), "lost": total - len(lat) - len(errors), "wall_s": round(wall, 3),
        "throughput_rps": round(len(lat) / wall, 2) if wall > 0 else None, "errors": errors[:5],
    }
    if a.size:
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        res.update(p50_ms=round(float(p50), 1), p90_ms=round(float(p90), 1), p99_ms=round(float(p99), 1),
                   mean_ms=round(float(a.mean()), 1))
    if before and after:
        runs = after["execution_count"] - before["execution_count"]
        imgs = after["inference_count"] - before["inference_count"]
        res["network_runs"], res["network_images"] = runs, imgs
        res["images_per_run"] = round(imgs / runs, 2) if runs else None
    return res


def _sample_images() -> list[bytes]:
    files = sorted((ROOT / "assets" / "samples").glob("*.jpg"))
    if not files:
        out = []
        for i in range(4):
            buf = io.BytesIO()
            render_scene(np.random.default_rng([777, i]), 1242, 375)[0].save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
        return out
    return [f.read_bytes() for f in files]


def _serve_demo(work: Path, log) -> Path:
    """Export the demo detector as a user would (``export.py --triton-repo``, python network backend) under
    ``work``; returns the repository."""
    ckpt = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"
    repo = work / "repo"
    cmd = [sys.executable, str(ROOT / "export.py"), "--ckpt", str(ckpt), "--out", str(work / "export"), "--dynamic",
           "--batch", "8", "--no-validate", "--triton-repo", str(repo), "--triton-backend", "python"]
    log(f"exporting {ckpt.name} (dynamic batch 8) and writing its Triton repository in {repo}")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise ServeError(f"export.py failed ({r.returncode}): {(r.stderr.strip().splitlines() or ['no output'])[-1]}")
    return repo


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("| protocol | clients | requests | ok | failed | lost | throughput (req/s) | p50 ms | p90 ms | p99 ms "
            "| images per network run |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['protocol']} | {r['clients']} | {r['clients'] * r['requests_per_client']} | {r['ok']} | "
                     f"{r['failed']} | {r['lost']} | {r['throughput_rps']} | {r.get('p50_ms')} | {r.get('p90_ms')} | "
                     f"{r.get('p99_ms')} | {r.get('images_per_run')} |")
    return "\n".join(lines)


def _uptime() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split(" ")[:3])
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    return cli.run("python -m cat_deploy.serve.loadtest", _main, argv)


def _main(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m cat_deploy.serve.loadtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running server's HOST:PORT (default: start one on 127.0.0.1)")
    p.add_argument("--protocol", nargs="+", default=["http", "grpc"], choices=["http", "grpc"])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8], help="concurrent clients (one run each)")
    p.add_argument("--requests", type=int, default=25, help="requests per client (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=600, help="seconds before a run gives up (default: %(default)s)")
    p.add_argument("--out", help="write triton_load.md/.json here (e.g. docs/benchmarks)")
    p.add_argument("--work", default="runs/loadtest", help="export and repository folder when starting a server")
    p.add_argument("--python", help="the serve environment's interpreter when starting a server (default: "
                   "$CAT_DEPLOY_SERVE_PYTHON, this one if it has nvidia-pytriton, else the checkout's .venv-serve)")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    images = _sample_images()
    rows, server_info = [], "an already running server at " + str(a.url)
    load_before = _uptime()

    def measure(urls: dict[str, str]):
        for proto in a.protocol:
            run_load(urls[proto], proto, images, 1, 2, a.timeout)  # warm-up: first calls allocate
            for n in a.clients:
                r = run_load(urls[proto], proto, images, n, a.requests, a.timeout)
                print(json.dumps({k: v for k, v in r.items() if k != "errors"}), flush=True)
                rows.append(r)

    try:
        if a.url:
            measure({proto: a.url for proto in a.protocol})
        else:
            repo = _serve_demo(Path(a.work), print)
            with TritonServer(repo, log_path=Path(a.work) / "tritonserver.log", python=a.python) as server:
                env = server.environment
                server_info = (f"Triton 2.51 (bundled with nvidia-pytriton) on 127.0.0.1 in the serve environment "
                               f"(Python {env.python_version}, NumPy {env.numpy}), the demo detector's repository with "
                               "the network on the Python backend (cat_deploy's ONNX Runtime runner, CPU); clients "
                               f"in this process (NumPy {np.__version__})")
                measure({"http": server.http_url, "grpc": server.grpc_url})
    except MissingDependency as e:
        print(f"loadtest: error: {e}", file=sys.stderr)
        return cli.MISSING_DEPENDENCY
    except ServeError as e:
        print(f"loadtest: error: {e}", file=sys.stderr)
        return cli.BAD_INPUT
    if a.out:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} cores", "server": server_info, "loadavg_before": load_before,
                "loadavg_after": _uptime(), "command": "python -m cat_deploy.serve.loadtest " + " ".join(
                    sys.argv[1:] if argv is None else argv)}
        _write(Path(a.out), meta, rows)
    return cli.OK if all(r["failed"] == 0 and r["lost"] == 0 for r in rows) else cli.CHECK_FAILED


def _write(out: Path, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    atomic_write(out / "triton_load.json", lambda t: Path(t).write_text(json.dumps({**meta, "runs": rows}, indent=2)))
    md = f"""# Triton serving: bounded load test

Command: `{meta['command']}` ({meta['date']}). Server: {meta['server']}. Machine: {meta['machine']},
shared with other jobs: 1/5/15-minute load average {meta['loadavg_before']} before and {meta['loadavg_after']} after.

Each client holds one connection and sends one image per request (the six sample scenes, 1242x375 JPEG), waiting
for each answer; `lost` counts requests never answered before the deadline. "images per network run" is
`inference_count / execution_count` of `cat_detect_net` over the run: above 1, Triton's dynamic batcher merged
concurrent requests into one network call.

{_table(rows)}
{_reading(rows)}"""
    atomic_write(out / "triton_load.md", lambda t: Path(t).write_text(md))


def _reading(rows) -> str:
    """What the table says, with its own numbers: saturation, queueing (Little's law) and batching."""
    if not rows or not all(r.get("mean_ms") and r.get("throughput_rps") for r in rows):
        return ""
    top = max(rows, key=lambda r: (r["clients"], r["protocol"] == "grpc"))
    one = min(rows, key=lambda r: r["clients"])
    little = top["clients"] / top["throughput_rps"] * 1000
    return f"""
## Reading it

- Throughput saturates: {one['throughput_rps']} req/s with {one['clients']} client(s), {top['throughput_rps']} with
  {top['clients']}. On this machine two cores run the clients, the server, the Python-backend processes (pre-processing,
  network, post-processing) and ONNX Runtime, all at once.
- Past saturation, latency is queueing: {top['clients']} clients / {top['throughput_rps']} req/s = {little:.0f} ms by
  Little's law against a measured mean of {top['mean_ms']} ms ({top['protocol']}, {top['clients']} clients).
- The dynamic batcher merges more as the queue grows ({one.get('images_per_run')} -> {top.get('images_per_run')} images
  per network run), which is what holds throughput up as clients are added.
- Not measured here: `tensorrt_plan`/`onnxruntime` backends on a GPU. There the network's share shrinks and the
  Python-backend decode and post-processing set the rate; more `cat_detect_pre` instances (`TritonRepoOptions.pre_instances`)
  and GPU JPEG decoding are the levers.
"""


if __name__ == "__main__":
    sys.exit(main())
