"""Run a Triton Inference Server on a model repository, on this machine, bound to 127.0.0.1.

The server is the ``tritonserver`` binary that ``nvidia-pytriton`` ships (Triton 2.51, with the
Python backend and its stub for each Python version; no onnxruntime or TensorRT backend, so
repositories served with it use ``--triton-backend python``). Two things make it start outside
NVIDIA's container, both done here:

- The Python backend's stub links ``libpython3.X.so.1.0`` by name. On a machine whose
  interpreter is not the system one (pyenv, a venv of it), the loader would pick the system
  library and the stub would run the interpreter's standard library on another patch release's
  C core (seen here: ``AttributeError: '_thread.RLock' object has no attribute '_recursion_count'``
  in ``multiprocessing.resource_tracker``). ``LD_LIBRARY_PATH`` puts this interpreter's
  ``LIBDIR`` first.
- The stub finds its ``site-packages`` through the ``python3`` first on ``PATH``: this
  interpreter's ``bin`` goes first, so the models import the same ``cat_deploy``, NumPy and
  ONNX Runtime as this process.

The stub is built against NumPy 1.x: with NumPy 2 installed, tensors cross it as zeros (seen
here), which is why ``nvidia-pytriton`` pins ``numpy<2``.

Example::

    with TritonServer("triton_repo", http_port=8000, grpc_port=8001) as server:
        ...  # tritonclient on 127.0.0.1:8000 (HTTP) / 127.0.0.1:8001 (gRPC)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

__all__ = ["TritonServer", "ServeError", "free_port", "INSTALL_HINT"]

INSTALL_HINT = "serving needs nvidia-pytriton and tritonclient: pip install 'cat-deploy[serve]'"
HOST = "127.0.0.1"


class ServeError(RuntimeError):
    """The server cannot start or stopped; one line (and the log file to read)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _bundled() -> tuple[Path, Path, Path, Path]:
    """(tritonserver binary, its libraries, its backends folder, the Python-backend stub for this Python)."""
    try:
        from pytriton.utils.distribution import get_libs_path, get_root_module_path, get_stub_path
    except ImportError:
        raise ServeError(INSTALL_HINT) from None
    root = get_root_module_path() / "tritonserver"
    stub = get_stub_path(f"{sys.version_info.major}.{sys.version_info.minor}")
    binary = root / "bin" / "tritonserver"
    for p in (binary, stub, root / "backends" / "python"):
        if not p.exists():
            raise ServeError(f"nvidia-pytriton's Triton server is incomplete ('{p}' missing): reinstall nvidia-pytriton")
    return binary, get_libs_path(), root / "backends", stub


def _environment(libs: Path) -> dict[str, str]:
    env = dict(os.environ)
    lib_dirs = [str(libs)]
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and sysconfig.get_config_var("LIBDIR"):
        lib_dirs.insert(0, sysconfig.get_config_var("LIBDIR"))
    if env.get("LD_LIBRARY_PATH"):
        lib_dirs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(lib_dirs)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


class TritonServer:
    """``tritonserver`` on ``repository``, HTTP and gRPC on 127.0.0.1 only, as a context manager.

    ``__enter__`` returns once every model is ready (or raises :class:`ServeError` with the log's
    last error line within ``start_timeout`` seconds); ``__exit__`` stops the server (SIGINT, then
    SIGKILL after ``exit_timeout`` seconds). The server's log goes to ``log_path``.
    """

    def __init__(self, repository: str | os.PathLike, http_port: Optional[int] = None,
                 grpc_port: Optional[int] = None, log_path: Optional[str | os.PathLike] = None,
                 start_timeout: float = 300.0, exit_timeout: float = 20.0, verbose: bool = False):
        self.repository = Path(repository).absolute()
        if not (self.repository.is_dir() and any(self.repository.glob("*/config.pbtxt"))):
            raise ServeError(f"'{repository}' is not a Triton model repository (no */config.pbtxt): write one with "
                             "python export.py --ckpt MODEL.pth --triton-repo DIR --triton-backend python")
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.start_timeout, self.exit_timeout, self.verbose = start_timeout, exit_timeout, verbose
        self.process: Optional[subprocess.Popen] = None
        self._workdir: Optional[str] = None

    @property
    def http_url(self) -> str:
        return f"{HOST}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def command(self, backends: Path) -> list[str]:
        binary = _bundled()[0]
        return [str(binary), f"--model-repository={self.repository}", f"--backend-directory={backends}",
                f"--http-address={HOST}", f"--http-port={self.http_port}", f"--grpc-address={HOST}",
                f"--grpc-port={self.grpc_port}", "--allow-metrics=false", "--allow-sagemaker=false",
                "--allow-vertex-ai=false", "--strict-readiness=true", "--disable-auto-complete-config", f"--exit-timeout-secs={int(self.exit_timeout)}",
                f"--log-verbose={1 if self.verbose else 0}"]

    def __enter__(self) -> "TritonServer":
        binary, libs, backends, stub = _bundled()
        self._workdir = tempfile.mkdtemp(prefix="cat_triton_")
        local = Path(self._workdir) / "backends"
        shutil.copytree(backends, local)  # the stub must sit in backends/python/; the installed tree stays as it is
        shutil.copy(stub, local / "python" / "triton_python_backend_stub")
        if self.log_path is None:
            self.log_path = Path(tempfile.gettempdir()) / f"cat_tritonserver_{self.http_port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(local), stdout=log, stderr=subprocess.STDOUT,
                                            env=_environment(libs), start_new_session=True)
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
