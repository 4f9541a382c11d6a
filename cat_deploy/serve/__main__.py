"""Serve a Triton model repository on this machine (127.0.0.1) with the server bundled in nvidia-pytriton.

    python export.py --ckpt assets/demo/cat_retinanet_tiny.pth --dynamic --batch 8 \\
        --triton-repo runs/triton_repo --triton-backend python
    python -m cat_deploy.serve --repo runs/triton_repo            # HTTP 127.0.0.1:8000, gRPC 127.0.0.1:8001
    python -m cat_deploy.serve.client --url 127.0.0.1:8001 --protocol grpc assets/samples/*.jpg

Runs until Ctrl-C. For GPUs, the onnxruntime or tensorrt_plan backends and serving beyond this
machine, run NVIDIA's container on the repository instead (see the repository's README.md).
"""
import argparse
import sys
import time

from .server import ServeError, TritonServer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cat_deploy.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", required=True, help="model repository written by export.py --triton-repo")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--log", help="server log file (default: in the temp folder)")
    a = p.parse_args(argv)
    try:
        with TritonServer(a.repo, a.http_port, a.grpc_port, log_path=a.log) as server:
            print(f"serving '{a.repo}': HTTP {server.http_url}, gRPC {server.grpc_url} (log: {server.log_path}); "
                  "Ctrl-C stops", flush=True)
            while server.process.poll() is None:
                time.sleep(1)
            print(f"python -m cat_deploy.serve: error: the server stopped: {server.last_error()}", file=sys.stderr)
            return 1
    except ServeError as e:
        print(f"python -m cat_deploy.serve: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
