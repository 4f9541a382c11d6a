"""Build the compiled ONNX Runtime operator library of the fused CAT nodes (``plugins/cpp`` -> ``plugins/lib``).

    python -m cat_deploy.plugins.build [--force]

Compiles ``cpp/cat_ort_ops.cc`` with ``g++`` (``$CXX``) into ``lib/libcat_deploy_ort_ops.so`` next to this
file, which :mod:`cat_deploy.plugins.ort_library` registers with ONNX Runtime. The build is skipped when the
library exists and its stamp (sources, flags, compiler, headers) matches.

ONNX Runtime's C/C++ headers are in no PyPI wheel and not in Debian 12; they are looked up in
``$ORT_INCLUDE_DIR``, then in ``plugins/_build/include``, and otherwise fetched once into the latter: the
``libonnxruntime-dev`` package of Debian 13 (ONNX Runtime 1.21, C API version 21, which newer runtimes
accept), downloaded with ``apt-get`` from the mirrors of this system's own apt sources with the suite
names changed to Debian 13's (nothing is installed into the system).

Exit status: 0 built or up to date; 3 a compiler, the headers or the network is missing (one line: the
runtime then uses the Python twin, which needs PyTorch and onnxruntime-extensions); 1 the compiler failed.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cat_deploy import cli
from cat_deploy.core.errors import MissingDependency
from cat_deploy.core.plugin_ids import ORT_OPS_LIBRARY

__all__ = ["HERE", "SOURCES", "FLAGS", "library_target", "find_headers", "apt_sources", "fetch_headers", "build", "main"]

HERE = Path(__file__).resolve().parent
SOURCES = (HERE / "cpp" / "cat_ort_ops.cc",)
HEADER = "onnxruntime_cxx_api.h"
CACHE = HERE / "_build" / "include"
# x86-64: an x86-64-v2 (SSE4.2) baseline, and the vector kernels carry an x86-64-v3 (AVX2, FMA, F16C) clone
# picked at load time; other CPUs: the compiler's default target
FLAGS = ("-O3", "-std=c++17", *(("-march=x86-64-v2",) if platform.machine() in ("x86_64", "AMD64") else ()),
         "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wno-psabi")
SUITES = {"bookworm": "trixie"}  # Debian 12 -> 13: libonnxruntime-dev exists from Debian 13 on
FALLBACK = ("ONNX Runtime will run the fused CAT nodes with the Python twin instead "
            "(needs PyTorch and onnxruntime-extensions: pip install 'cat-deploy[plugin]')")
PROG = "cat_deploy.plugins.build"


def library_target() -> Path:
    """Where the library is written (and where :func:`cat_deploy.plugins.ort_library.library_path` looks)."""
    return HERE / "lib" / ORT_OPS_LIBRARY


def find_headers() -> Path | None:
    """Folder holding ``onnxruntime_cxx_api.h``: ``$ORT_INCLUDE_DIR``, else the fetched copy; None if neither."""
    for folder in (os.environ.get("ORT_INCLUDE_DIR"), CACHE / "onnxruntime"):
        if folder and (Path(folder) / HEADER).is_file():
            return Path(folder)
    return None


def apt_sources(etc: Path = Path("/etc/apt")) -> tuple[str, str]:
    """This system's Debian 12/13 apt sources with the suite names changed to Debian 13's: (text, file suffix).

    deb822 stanzas (``sources.list.d/*.sources``) when there are any, else one-line entries (``sources.list``,
    ``sources.list.d/*.list``). The mirrors are the system's own.
    """
    parts = etc / "sources.list.d"
    stanzas = [s for f in sorted(parts.glob("*.sources")) for s in re.split(r"\n\s*\n", f.read_text())]
    lines = [line for f in [etc / "sources.list", *sorted(parts.glob("*.list"))] if f.is_file()
             for line in f.read_text().splitlines() if line.strip().startswith("deb ")]
    debian = re.compile(r"\b(bookworm|trixie)\b")
    for entries, suffix, sep in (([s.strip() for s in stanzas if debian.search(s)], ".sources", "\n\n"),
                                 ([line for line in lines if debian.search(line)], ".list", "\n")):
        if entries:
            text = sep.join(entries) + "\n"
            for old, new in SUITES.items():
                text = re.sub(rf"\b{old}\b", new, text)
            return text, suffix
    raise MissingDependency("no Debian 12 or 13 apt source on this system to fetch libonnxruntime-dev from; "
                            "set ORT_INCLUDE_DIR to a folder with ONNX Runtime's headers")


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.startswith(("E:", "W:", "Err"))]
        raise MissingDependency(f"{what} failed ({(lines or ['exit status ' + str(proc.returncode)])[0].strip()[:200]})")


def fetch_headers(dest: Path = CACHE) -> Path:
    """Download Debian 13's ``libonnxruntime-dev`` with apt-get (private lists, nothing installed) and unpack its
    ``usr/include/onnxruntime`` into ``dest``; returns the header folder."""
    apt, dpkg = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if not apt or not dpkg:
        raise MissingDependency("ONNX Runtime's C++ headers are not here and apt-get/dpkg-deb are not available to "
                                "fetch them; set ORT_INCLUDE_DIR to a folder with onnxruntime_cxx_api.h")
    with tempfile.TemporaryDirectory(prefix="cat-deploy-ort-") as tmp:
        tmp = Path(tmp)
        text, suffix = apt_sources()
        sources = tmp / f"debian{suffix}"
        sources.write_text(text)
        (tmp / "lists" / "partial").mkdir(parents=True)
        (tmp / "cache" / "archives" / "partial").mkdir(parents=True)
        opts = [f"-o=Dir::Etc::sourcelist={sources}", "-o=Dir::Etc::sourceparts=-", f"-o=Dir::State::Lists={tmp / 'lists'}",
                f"-o=Dir::Cache={tmp / 'cache'}", "-qq"]
        if os.geteuid() == 0:  # root: no switch to the _apt user, who cannot write into this folder
            opts.append("-o=APT::Sandbox::User=root")
        _run([apt, *opts, "update"], "apt-get update (Debian 13 package lists; is the network reachable?)")
        _run([apt, *opts, "download", "libonnxruntime-dev"], "apt-get download libonnxruntime-dev", cwd=tmp)
        debs = sorted(tmp.glob("libonnxruntime-dev_*.deb"))
        if not debs:
            raise MissingDependency("apt-get download libonnxruntime-dev wrote no package")
        _run([dpkg, "-x", str(debs[0]), str(tmp / "root")], "dpkg-deb -x libonnxruntime-dev")
        headers = tmp / "root" / "usr" / "include" / "onnxruntime"
        if not (headers / HEADER).is_file():
            raise MissingDependency(f"{debs[0].name} holds no usr/include/onnxruntime/{HEADER}")
        staging = dest / ".onnxruntime.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(headers, staging)
        shutil.rmtree(dest / "onnxruntime", ignore_errors=True)
        staging.rename(dest / "onnxruntime")
    return dest / "onnxruntime"


def _stamp(compiler: str, headers: Path) -> str:
    h = hashlib.sha256()
    for src in SOURCES:
        h.update(src.read_bytes())
    h.update(" ".join(FLAGS).encode())
    h.update(subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.encode())
    h.update((headers / "onnxruntime_c_api.h").read_bytes())
    return h.hexdigest()


def build(force: bool = False, log=print) -> Path:
    """Compile the library if its sources (or flags, compiler, headers) changed; returns its path.

    Raises :class:`MissingDependency` (one line) when the compiler or the headers are missing and cannot be
    fetched, :class:`RuntimeError` when the compiler fails.
    """
    missing = [str(src) for src in SOURCES if not src.is_file()]
    if missing:
        raise MissingDependency(f"the C++ sources are not installed ({missing[0]}): build from a source checkout")
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        raise MissingDependency(f"no C++ compiler ({os.environ.get('CXX', 'g++')}) on PATH: apt-get install g++")
    headers = find_headers()
    if headers is None:
        log(f"{PROG}: fetching ONNX Runtime's C++ headers (Debian 13 libonnxruntime-dev) into {CACHE}")
        headers = fetch_headers()
    target = library_target()
    stamp_file = target.with_name(target.name + ".stamp")
    stamp = _stamp(compiler, headers)
    if not force and target.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        log(f"{PROG}: {target} is up to date")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run([compiler, *FLAGS, f"-I{headers}", *map(str, SOURCES), "-o", tmp],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if "error" in line] or proc.stderr.splitlines()
            raise RuntimeError(f"{Path(compiler).name} failed: {(errors or ['no output'])[0][:300]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    stamp_file.write_text(stamp + "\n")
    log(f"{PROG}: built {target}")
    return target


def main(argv=None) -> int:
    return cli.run(PROG, _main, argv)


def _main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    try:
        build(a.force)
    except MissingDependency as e:
        print(f"{PROG}: cannot build {ORT_OPS_LIBRARY}: {e}; {FALLBACK}", file=sys.stderr)
        return cli.MISSING_DEPENDENCY
    except RuntimeError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return cli.CHECK_FAILED
    return cli.OK


if __name__ == "__main__":
    sys.exit(main())
