"""``python -m cat_deploy.plugins.build``: Debian 13 sources from the system's own, one line and exit 3 when it
cannot build, no rebuild when nothing changed."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cat_deploy.core.errors import MissingDependency
from cat_deploy.plugins import build

ROOT = Path(__file__).resolve().parents[2]


def test_apt_sources_rename_debian12_suites_and_keep_the_systems_mirrors(tmp_path):
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n")
    (parts / "other.sources").write_text("Types: deb\nURIs: http://other.invalid/node\nSuites: nodistro\n")
    text, suffix = build.apt_sources(tmp_path)
    assert suffix == ".sources" and "bookworm" not in text and "other.invalid" not in text
    assert "Suites: trixie trixie-updates" in text and "Suites: trixie-security" in text
    assert text.count("mirror.invalid") == 2

    (parts / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb http://mirror.invalid/debian bookworm main\n# deb-src x bookworm main\n")
    assert build.apt_sources(tmp_path) == ("deb http://mirror.invalid/debian trixie main\n", ".list")


def test_missing_compiler_is_one_line_and_exit_3(tmp_path):
    env = dict(os.environ, CXX=str(tmp_path / "no-such-g++"), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "cat_deploy.plugins.build"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and "no C++ compiler" in err and "Python twin" in err, err


def test_headers_that_cannot_be_fetched_are_one_line_and_exit_3(monkeypatch, capsys):
    monkeypatch.setattr(build, "find_headers", lambda: None)

    def offline():
        raise MissingDependency("apt-get update (Debian 13 package lists; is the network reachable?) failed (E: x)")

    monkeypatch.setattr(build, "fetch_headers", offline)
    assert build.main([]) == 3
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is the network reachable?" in err and "Python twin" in err, err


def test_unchanged_sources_are_not_rebuilt(ort_ops_library):
    if build.find_headers() is None:
        pytest.skip("ONNX Runtime's headers are not here (the library was built elsewhere)")
    build.build(log=lambda s: None)  # brings the library up to date with the sources
    before = build.library_target().stat().st_mtime_ns
    logged = []
    assert build.build(log=logged.append) == build.library_target()
    assert build.library_target().stat().st_mtime_ns == before and "up to date" in logged[0]
