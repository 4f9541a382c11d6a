"""Serve a Triton model repository on this machine (127.0.0.1) with the server bundled in nvidia-pytriton.

    python export.py --ckpt assets/demo/cat_retinanet_tiny.pth --dynamic --batch 8 \\
        --triton-repo runs/triton_repo --triton-backend python
    python -m cat_deploy.serve --repo runs/triton_repo            # HTTP 127.0.0.1:8000, gRPC 127.0.0.1:8001
    python -m cat_deploy.serve.client --url 127.0.0.1:8001 --protocol grpc assets/samples/*.jpg

The server and its Python-backend models run in the serve environment (nvidia-pytriton needs
NumPy<2; scripts/setup.sh makes .venv-serve): --python names its interpreter (default:
$CAT_DEPLOY_SERVE_PYTHON, else this one if it has nvidia-pytriton, else the checkout's .venv-serve).
Runs until Ctrl-C. For GPUs, the onnxruntime or tensorrt_plan backends and serving beyond this
machine, run NVIDIA's container on the repository instead (see the repository's README.md).
Exit status: 2 bad input (repository, ports), 3 no serve environment, 4 the server stopped by
itself (its log says why), 130 Ctrl-C.
"""
import argparse
import sys
import time

from .. import cli
from ..core.errors import MissingDependency
from .server import ServeError, TritonServer


def main(argv=None) -> int:
    return cli.run("python -m cat_deploy.serve", _main, argv)


def _main(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m cat_deploy.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", required=True, help="model repository written by export.py --triton-repo")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--python", help="the serve environment's interpreter (nvidia-pytriton, cat-deploy[serve])")
    p.add_argument("--log", help="server log file (default: in the temp folder)")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    prog = "python -m cat_deploy.serve"
    try:
        with TritonServer(a.repo, a.http_port, a.grpc_port, log_path=a.log, python=a.python) as server:
            print(f"serving '{a.repo}': HTTP {server.http_url}, gRPC {server.grpc_url} (log: {server.log_path}; "
                  f"environment {server.environment.python}); Ctrl-C stops", flush=True)
            while server.process.poll() is None:
                time.sleep(1)
            print(f"{prog}: error: the server stopped: {server.last_error()}", file=sys.stderr)
            return cli.INTERNAL_ERROR
    except MissingDependency as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return cli.MISSING_DEPENDENCY
    except ServeError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return cli.BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
