"""Regenerate this folder from the ``tensorrt-cu12-bindings`` wheels (not run by the tests).

    pip download --no-deps tensorrt-cu12-bindings==10.9.0.34 tensorrt-cu12-bindings==11.4.0.106 \
        tensorrt-cu12-bindings==10.16.1.11 -d wheels
    python tests/trt_bindings/extract.py wheels/*.whl

For each wheel it writes ``<version>/names.txt``: the identifier at the end of every string of
the compiled ``tensorrt.so`` (class, method, property, argument and enum member names as
pybind11 registers them; C++ mangled symbols dropped). The end, because the linker stores a
literal such as ``"IPluginV3"`` as the tail of a longer one (``"nvinfer1::IPluginV3"``). For the versions in ``FRONT_END`` it also copies NVIDIA's
Python plugin front end, ``tensorrt_bindings/__init__.py`` and ``tensorrt_bindings/plugin/*.py``
(each file carries NVIDIA's ``SPDX-License-Identifier: Apache-2.0`` header), as
``<version>/tensorrt/``. The compiled library itself is not kept (proprietary, and it needs
libnvinfer to load).
"""
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRONT_END = ("10.9.0.34", "11.4.0.106")
TAIL = re.compile(rb"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]+$")


def names_from_so(data: bytes) -> list[str]:
    """Identifiers (>= 2 chars) ending the NUL-terminated strings of a shared library, sorted, no mangled symbols."""
    found = set()
    for run in data.split(b"\x00"):
        if b"_Z" in run or b"_GLOBAL" in run or b"$" in run:  # mangled C++ symbols
            continue
        m = TAIL.search(run[-64:])
        if m:
            found.add(m.group().decode())
    return sorted(found)


def extract(wheel: Path) -> None:
    version = wheel.name.split("-")[1]
    out = HERE / version
    with zipfile.ZipFile(wheel) as z:
        so = z.read("tensorrt_bindings/tensorrt.so")
        out.mkdir(exist_ok=True)
        (out / "names.txt").write_text("\n".join(names_from_so(so)) + "\n")
        if version in FRONT_END:
            for name in z.namelist():
                if name == "tensorrt_bindings/__init__.py" or re.fullmatch(r"tensorrt_bindings/plugin/\w+\.py", name):
                    text = z.read(name).decode()
                    assert "SPDX-License-Identifier: Apache-2.0" in text, name
                    dst = out / "tensorrt" / name.split("/", 1)[1]
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.write_text(text)
    print(f"{version}: {len((out / 'names.txt').read_text().split())} names"
          + (", plugin front end copied" if version in FRONT_END else ""))


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        extract(Path(arg))
