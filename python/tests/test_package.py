"""The package's environment in a development install (the checkout): ONNX
Runtime and the assets as the `borex` binary finds them, the onnxruntime
package's library located without importing it, and `python -m borex` running
the checkout's binary. The installed wheel is checked outside the checkout by
scripts/test_wheel.sh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import borex
from borex import _package

from conftest import BINARY


def test_a_checkout_install_is_not_an_installed_package() -> None:
    assert not _package.installed()


def test_info_names_the_library_the_binary_loads() -> None:
    info = borex.info()
    out = subprocess.run([str(BINARY), "--device", "cpu", "info"], check=True, capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("ONNX Runtime: "))
    assert line == f"ONNX Runtime: {info['ort_version']} from {info['ort_library']} ({info['ort_source']})"
    assert out.splitlines()[0] == info["assets_lines"][0]
    assert "CPUExecutionProvider" in info["execution_providers"]


def test_the_onnxruntime_package_library_is_found_without_importing_it() -> None:
    code = (
        "import sys; from borex import _package; lib = _package.ort_library(); "
        "print(lib, 'onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    import onnxruntime

    capi = Path(onnxruntime.__file__).resolve().parent / "capi"
    assert Path(out[0]).resolve().parent == capi and Path(out[0]).name.startswith("libonnxruntime.so"), out
    assert out[1] == "False", "find_spec must not import onnxruntime"


def test_python_m_borex_is_the_binary() -> None:
    for args in (["--version"], ["classify", "--help"]):
        want = subprocess.run([str(BINARY), *args], check=True, capture_output=True, text=True).stdout
        got = subprocess.run([sys.executable, "-m", "borex", *args], check=True, capture_output=True, text=True)
        assert got.stdout == want
