"""Where an installed borex finds ONNX Runtime, and its command line.

An installed wheel takes ONNX Runtime from the ``onnxruntime`` (or
``onnxruntime-gpu``) Python package of its environment, unless
``ORT_DYLIB_PATH`` or the assets folder (``BOREX_HOME``, else the per-user
data folder) holds a library. A development install (``maturin develop`` in
the checkout) keeps the checkout's ``.borex``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from . import _borex

_HERE = Path(__file__).resolve().parent
#: The environment variable that hands the onnxruntime package's library to the binary.
PACKAGE_ORT_ENV = "BOREX_PACKAGE_ORT_LIB"


def installed() -> bool:
    """True for an installed wheel; False when this package is python/borex of a checkout."""
    return not (_HERE.parent / "Cargo.toml").is_file()


def ort_library() -> str | None:
    """The shared library the ``onnxruntime`` package ships (``onnxruntime/capi/``),
    found without importing the package; None when it is not installed."""
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        capi = Path(location) / "capi"
        # libonnxruntime.so.1.31.1 (Linux), libonnxruntime.1.31.1.dylib (macOS), onnxruntime.dll;
        # not libonnxruntime_providers_*.
        found = sorted(
            p
            for pattern in ("libonnxruntime.so*", "libonnxruntime.*dylib", "onnxruntime.dll")
            for p in capi.glob(pattern)
        )
        if found:
            return str(found[-1])
    return None


def configure() -> None:
    """Tell the native module, once at import, that it runs from an installed package."""
    # Mesa's spurious Wayland error is kept quiet where adapters are probed (Engine(), by
    # __init__._quiet_wayland_probe), leaving the user's environment as it was.
    if installed():
        _borex._set_package(ort_library())


def info() -> dict[str, Any]:
    """Which ONNX Runtime library borex loads and from where (``ort_library``,
    ``ort_source``: ``$ORT_DYLIB_PATH``, the assets folder or the onnxruntime Python
    package), its ``ort_version`` and ``execution_providers``, the ``assets`` folder
    (models, labels) and why it was chosen (``assets_lines``), and borex's ``version``.
    Loads the library: a missing or too old one raises :class:`borex.BorexRuntimeError`."""
    out: dict[str, Any] = _borex._info()
    return out


def binary() -> Path:
    """The ``borex`` binary: the one shipped in the wheel (``borex/bin/borex``); in a
    development install the checkout's release build first (a copy in bin/ may be stale)."""
    shipped, built = _HERE / "bin" / "borex", _HERE.parents[1] / "target" / "release" / "borex"
    for candidate in (shipped,) if installed() else (built, shipped):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{_HERE / 'bin' / 'borex'}: this borex install has no command-line binary; "
        "build the wheel with scripts/wheel.sh, or run `cargo build --release` in the checkout"
    )


def main() -> NoReturn:
    """The ``borex`` console script and ``python -m borex``: run the binary with the same
    arguments (its outputs and exit status are the command's), telling it where
    the onnxruntime package's library is; ``fetch-model`` is the Python side's
    (:func:`borex.download_model`)."""
    if sys.argv[1:2] == ["fetch-model"]:
        from . import _fetch

        raise SystemExit(_fetch.main(sys.argv[2:]))
    try:
        exe = binary()
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    env = dict(os.environ)
    if installed():
        env[PACKAGE_ORT_ENV] = ort_library() or ""
    os.execve(exe, [str(exe), *sys.argv[1:]], env)
