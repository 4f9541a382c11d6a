"""Run a Triton Inference Server on a model repository, on this machine, bound to 127.0.0.1.

The server is the ``tritonserver`` binary that ``nvidia-pytriton`` ships (Triton 2.51, with the
Python backend and its stub for each Python version; no onnxruntime or TensorRT backend, so
repositories served with it use ``--triton-backend python``).

nvidia-pytriton requires ``numpy<2``: its Python-backend stub is built against NumPy 1.x (with
NumPy 2 every tensor crossed it as zeros, seen here). So the server gets an environment of its
own, the **serve environment**: ``cat-deploy[serve]`` (the torch-free runtime the Python-backend
models import, and nvidia-pytriton) with NumPy 1.x, while the rest of the project, the clients
included, keeps NumPy 2. ``scripts/setup.sh`` makes it as ``.venv-serve``. :class:`TritonServer`
runs from any environment and starts the server with the serve environment's interpreter
(``python=``; see :func:`serve_python` for the default):

- The Python backend's stub links ``libpython3.X.so.1.0`` by name. On a machine whose
  interpreter is not the system one (pyenv, a venv of it), the loader would pick the system
  library and the stub would run the interpreter's standard library on another patch release's
  C core (seen here: ``AttributeError: '_thread.RLock' object has no attribute '_recursion_count'``
  in ``multiprocessing.resource_tracker``). ``LD_LIBRARY_PATH`` puts that interpreter's
  ``LIBDIR`` first.
- The stub finds its ``site-packages`` through the ``python3`` first on ``PATH``: the serve
  environment's ``bin`` goes first, so the models import its ``cat_deploy``, NumPy and ONNX Runtime.

Example::

    with TritonServer("triton_repo", python=".venv-serve/bin/python") as server:
        ...  # tritonclient on server.http_url (HTTP) / server.grpc_url (gRPC), both on 127.0.0.1
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.errors import MissingDependency
from ..core.optional import is_available

__all__ = ["TritonServer", "ServeError", "ServeEnvironment", "serve_python", "probe_environment", "free_port",
           "INSTALL_HINT", "SERVE_PYTHON_ENV"]

SERVE_PYTHON_ENV = "CAT_DEPLOY_SERVE_PYTHON"
CHECKOUT_SERVE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-serve" / "bin" / "python"
INSTALL_HINT = ("serving needs nvidia-pytriton, which requires NumPy<2: install it in an environment of its own "
                "(python3 -m venv .venv-serve && .venv-serve/bin/pip install 'cat-deploy[serve]'; in a checkout "
                "scripts/setup.sh does it) and pass that environment's python (--python, or "
                f"${SERVE_PYTHON_ENV})")
HOST = "127.0.0.1"
# Run by the serve environment's interpreter: where nvidia-pytriton keeps the server, and whether the
# Python-backend models (cat_deploy.serve.triton_models) import there.
_PROBE = """
import json, sys, sysconfig
import numpy
from pytriton.utils.distribution import get_libs_path, get_root_module_path, get_stub_path
import cat_deploy.serve.triton_models
v = f"{sys.version_info.major}.{sys.version_info.minor}"
shared = sysconfig.get_config_var("Py_ENABLE_SHARED")
print(json.dumps({"root": str(get_root_module_path() / "tritonserver"), "libs": str(get_libs_path()),
                  "stub": str(get_stub_path(v)), "python_version": v, "numpy": numpy.__version__,
                  "libdir": sysconfig.get_config_var("LIBDIR") if shared else None,
                  "torch": "torch" in sys.modules}))
"""


class ServeError(RuntimeError):
    """The server cannot start or stopped; one line (and the log file to read)."""


@dataclass(frozen=True)
class ServeEnvironment:
    """The serve environment as its interpreter reports it (:func:`probe_environment`)."""

    python: Path
    binary: Path  # tritonserver
    libs: Path  # its shared libraries
    backends: Path  # its backends folder (python/)
    stub: Path  # the Python-backend stub built for this interpreter's version
    libdir: Optional[str]  # the interpreter's LIBDIR (libpython), when built shared
    python_version: str
    numpy: str
    imports_torch: bool  # whether importing the Python-backend models loaded PyTorch (they must not)


def serve_python(python: Optional[str | os.PathLike] = None) -> Path:
    """The interpreter of the serve environment: ``python`` if given, else ``$CAT_DEPLOY_SERVE_PYTHON``, else this
    interpreter when nvidia-pytriton is installed here, else the checkout's ``.venv-serve``; else one line saying
    how to make one (:class:`~cat_deploy.core.errors.MissingDependency`, exit 3)."""
    given = python or os.environ.get(SERVE_PYTHON_ENV)
    if given:
        path = Path(given)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServeError(f"the serve environment's python '{given}' is not an executable file: pass the "
                             "interpreter of an environment with cat-deploy[serve] (e.g. .venv-serve/bin/python)")
        return path
    if is_available("pytriton"):
        return Path(sys.executable)
    if CHECKOUT_SERVE_PYTHON.is_file():
        return CHECKOUT_SERVE_PYTHON
    raise MissingDependency(INSTALL_HINT)


def probe_environment(python: Path, timeout: float = 120.0) -> ServeEnvironment:
    """Ask ``python`` where its nvidia-pytriton keeps the server and check that the Python-backend models import
    there (run from the temp folder, so a checkout in the working folder does not stand in for an install)."""
    try:
        r = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=timeout,
                           cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ServeError(f"cannot run the serve environment's python '{python}': {e}") from None
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise MissingDependency(f"the serve environment '{python}' cannot run the server ({last}); {INSTALL_HINT}")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    root = Path(info["root"])
    env = ServeEnvironment(Path(python), root / "bin" / "tritonserver", Path(info["libs"]), root / "backends",
                           Path(info["stub"]), info["libdir"], info["python_version"], info["numpy"], info["torch"])
    for p in (env.binary, env.stub, env.backends / "python"):
        if not p.exists():
            raise ServeError(f"nvidia-pytriton's Triton server in '{python}' is incomplete ('{p}' missing): "
                             "reinstall nvidia-pytriton there")
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _environment(env: ServeEnvironment) -> dict[str, str]:
    out = dict(os.environ)
    lib_dirs = [d for d in (env.libdir, str(env.libs), out.get("LD_LIBRARY_PATH")) if d]
    out["LD_LIBRARY_PATH"] = ":".join(lib_dirs)
    out["PATH"] = os.pathsep.join([str(env.python.parent), out.get("PATH", "")])
    return out


class TritonServer:
    """``tritonserver`` on ``repository``, HTTP and gRPC on 127.0.0.1 only, as a context manager.

    ``__enter__`` returns once every model is ready (or raises :class:`ServeError` with the log's
    last error line within ``start_timeout`` seconds); ``__exit__`` stops the server (SIGINT, then
    SIGKILL after ``exit_timeout`` seconds). The server's log goes to ``log_path``. ``python``: the serve
    environment's interpreter (default: :func:`serve_python`); the server and its Python-backend models run
    there, whatever environment this process runs in.
    """

    def __init__(self, repository: str | os.PathLike, http_port: Optional[int] = None,
                 grpc_port: Optional[int] = None, log_path: Optional[str | os.PathLike] = None,
                 start_timeout: float = 300.0, exit_timeout: float = 20.0, verbose: bool = False,
                 python: Optional[str | os.PathLike] = None):
        self.repository = Path(repository).absolute()
        if not (self.repository.is_dir() and any(self.repository.glob("*/config.pbtxt"))):
            raise ServeError(f"'{repository}' is not a Triton model repository (no */config.pbtxt): write one with "
                             "python export.py --ckpt MODEL.pth --triton-repo DIR --triton-backend python")
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.start_timeout, self.exit_timeout, self.verbose = start_timeout, exit_timeout, verbose
        self.python = python
        self.environment: Optional[ServeEnvironment] = None
        self.process: Optional[subprocess.Popen] = None
        self._workdir: Optional[str] = None

    @property
    def http_url(self) -> str:
        return f"{HOST}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def command(self, binary: Path, backends: Path) -> list[str]:
        return [str(binary), f"--model-repository={self.repository}", f"--backend-directory={backends}",
                f"--http-address={HOST}", f"--http-port={self.http_port}", f"--grpc-address={HOST}",
                f"--grpc-port={self.grpc_port}", "--allow-metrics=false", "--allow-sagemaker=false",
                "--allow-vertex-ai=false", "--strict-readiness=true", "--disable-auto-complete-config",
                f"--exit-timeout-secs={int(self.exit_timeout)}", f"--log-verbose={1 if self.verbose else 0}"]

    def __enter__(self) -> "TritonServer":
        env = self.environment = probe_environment(serve_python(self.python))
        self._workdir = tempfile.mkdtemp(prefix="cat_triton_")
        local = Path(self._workdir) / "backends"
        shutil.copytree(env.backends, local)  # the stub must sit in backends/python/; the installed tree stays as is
        shutil.copy(env.stub, local / "python" / "triton_python_backend_stub")
        if self.log_path is None:
            self.log_path = Path(tempfile.gettempdir()) / f"cat_tritonserver_{self.http_port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(env.binary, local), stdout=log, stderr=subprocess.STDOUT,
                                            env=_environment(env), start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        url = f"http://{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeError(f"tritonserver exited with status {self.process.returncode}: {self.last_error()} "
                                 f"(log: {self.log_path})")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.5)
        raise ServeError(f"tritonserver was not ready within {self.start_timeout:.0f} s: {self.last_error()} "
                         f"(log: {self.log_path})")

    def last_error(self) -> str:
        """The last error line of the server's log (model load failures, bad configs)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        errors = [ln for ln in lines if ln.startswith("E") or "error" in ln.lower()]
        return (errors or lines or ["empty log"])[-1].strip()[:400]

    def stop(self) -> None:
        p = self.process
        if p is not None and p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
            try:
                p.wait(timeout=self.exit_timeout + 10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
