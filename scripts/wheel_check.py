"""Checks of the installed borex wheel, run by scripts/test_wheel.sh in a fresh
venv outside the checkout (the current folder holds models/, labels/ and
images/ copied from the setup's assets; HOME is an empty folder). Every check
asserts; the first failure ends the run with its message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

import borex

MODEL = Path("models/efficientnet-lite0.onnx").resolve()
CHELSEA = Path("images/chelsea.png").resolve()
REFERENCE = os.environ["BOREX_REFERENCE_BIN"]  # the checkout's cargo-built binary
REFERENCE_ENV = {**os.environ, "BOREX_HOME": os.environ["BOREX_REFERENCE_HOME"]}
VENV_BIN = Path(sys.executable).parent


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A failed command's stderr: one line, non-zero exit, naming each needle."""
    assert p.returncode != 0, f"{p.args} succeeded: {p.stdout}"
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1, f"{p.args}: not a one-line error: {err!r}"
    for n in needles:
        assert n in err, f"{p.args}: {n!r} not in {err!r}"
    return err


def check(name: str) -> None:
    print(f"[wheel] ok: {name}", file=sys.stderr)


# The package is the installed one, not a checkout's.
site = Path(ort.__file__).resolve().parents[1]
assert Path(borex.__file__).resolve().is_relative_to(site), borex.__file__
assert "BOREX_HOME" not in os.environ and not (Path.home() / ".local/share/borex").exists(), "no assets in HOME"
check(f"borex {borex.__version__} installed in {site}")

# The development build's test hooks (cargo feature test-hooks) are not shipped.
hooks = sorted(n for n in dir(borex._borex) if n in ("_time_rust_refine", "_panic_for_test") or "for_test" in n)
assert not hooks, f"test hooks in the wheel's module: {hooks}"
check("no test hooks in borex._borex")

# ONNX Runtime: the onnxruntime package's library.
info = borex.info()
capi = Path(ort.__file__).resolve().parent / "capi"
assert Path(info["ort_library"]).resolve().parent == capi, info
assert info["ort_source"] == "the onnxruntime Python package", info
assert info["ort_version"] == ort.__version__, (info, ort.__version__)
assert "CPUExecutionProvider" in info["execution_providers"], info
check(f"borex.info(): ONNX Runtime {info['ort_version']} from {info['ort_library']}")

# classify: the probabilities of onnxruntime's own session on the same input. A 256×256
# image needs no resize (short side 256) and is centre-cropped to 224 (offset 16).
engine = borex.Engine(model=MODEL)
image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
got = {p.id: p.probability for p in engine.classify(image, top=5)}
x = ((image[16:240, 16:240].astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
logits = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0][0]
probs = np.exp(logits - logits.max())
probs /= probs.sum()
want = np.argsort(-probs)[:5]
assert list(got) == list(want), (got, want)
assert np.allclose([got[int(i)] for i in want], probs[want], rtol=1e-4, atol=1e-6), (got, probs[want])
top = engine.classify(CHELSEA, top=1)[0]
assert 281 <= top.id <= 285 and "cat" in top.label, top  # chelsea.png is a cat
check(f"classify: onnxruntime's probabilities; chelsea.png is {top.label!r}")

# refine: the checkout binary's maps, bit for bit (same model, settings and seed).
r = engine.refine(CHELSEA, iters=4, seed=0)
assert r.refined.shape == (224, 224) and np.isfinite(r.refined).all()
out = Path("ref_refine")
p = run([REFERENCE, "refine", str(CHELSEA), "--model", str(MODEL), "--iters", "4", "--seed", "0",
         "-o", str(out), "--quiet"], env=REFERENCE_ENV)
assert p.returncode == 0, p.stderr
assert np.array_equal(np.load(out / "refined.npy"), r.refined), "refine differs from the cargo-built binary's"
check("refine: the cargo-built binary's refined map, bit for bit")

# The console script and python -m borex: the binary's arguments and outputs.
ref = run([REFERENCE, "classify", str(CHELSEA), "--model", str(MODEL)], env=REFERENCE_ENV)
assert ref.returncode == 0, ref.stderr
for cmd in ([str(VENV_BIN / "borex")], [sys.executable, "-m", "borex"]):
    p = run([*cmd, "classify", str(CHELSEA), "--model", str(MODEL)])
    assert p.returncode == 0, p.stderr
    assert p.stdout == ref.stdout, (p.stdout, ref.stdout)
    p = run([*cmd, "refine", str(CHELSEA), "--model", str(MODEL), "--iters", "4", "--seed", "0",
             "-o", "cli_refine", "--quiet"])
    assert p.returncode == 0, p.stderr
    assert np.array_equal(np.load("cli_refine/refined.npy"), r.refined)
    p = run([*cmd, "info", "--model", str(MODEL), "--device", "cpu"])
    assert p.returncode == 0, p.stderr
    assert f"from {info['ort_library']} (the onnxruntime Python package)" in p.stdout, p.stdout
    check(f"{' '.join(Path(c).name for c in cmd)}: classify and refine as the binary, info names the package")

# Bad input: one-line errors naming the fix.
code = "import borex, sys\ntry:\n    {}\nexcept borex.BorexError as e:\n    sys.exit(f'{{type(e).__name__}}: {{e}}')\n"
no_model = "borex.Engine()"
for env in ({}, {"BOREX_HOME": os.environ["BOREX_EMPTY_HOME"]}):
    e = one_line_error(run([sys.executable, "-c", code.format(no_model)], env={**os.environ, **env}),
                       "bundled model is not installed", "borex fetch-model", "borex[model]")
    one_line_error(run([str(VENV_BIN / "borex"), "classify", str(CHELSEA)], env={**os.environ, **env}),
                   "bundled model is not installed")
check(f"Engine() without the bundled model: {e}")
Path("not_onnx.onnx").write_bytes(b"this is not an ONNX file\n" * 10)
e = one_line_error(run([sys.executable, "-c", code.format("borex.Engine(model='not_onnx.onnx')")]),
                   "ModelError", "not a loadable ONNX model")
one_line_error(run([str(VENV_BIN / "borex"), "classify", str(CHELSEA), "--model", "not_onnx.onnx"]),
               "not a loadable ONNX model")
check(f"a file that is not ONNX: {e}")
# An ONNX Runtime older than 1.31, refused by its versioned name before it is loaded.
Path("old").mkdir(exist_ok=True)
Path("old/libonnxruntime.so.1.20.0").write_bytes(b"\x7fELF")
old_env = {**os.environ, "ORT_DYLIB_PATH": str(Path("old/libonnxruntime.so.1.20.0").resolve())}
e = one_line_error(run([sys.executable, "-c", code.format(f"borex.Engine(model={str(MODEL)!r})")], env=old_env),
                   "too old", "pip install 'onnxruntime>=1.31,<2'")
check(f"an old ONNX Runtime: {e}")
# fetch-model: without onnx a one-line error naming the extra; with it the bundled model
# lands in the per-user folder and is the setup's model, byte for byte.
e = one_line_error(run([str(VENV_BIN / "borex"), "fetch-model"]), "pip install 'borex[model]'")
check(f"fetch-model without onnx: {e}")
p = run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "onnx==1.19.1"])
assert p.returncode == 0, p.stderr
p = run([str(VENV_BIN / "borex"), "fetch-model"])
assert p.returncode == 0, p.stderr
assert "[borex] downloading" in p.stderr and "[borex] ready" in p.stderr, p.stderr
fetched = Path.home() / ".local/share/borex"
reference_models = Path(os.environ["BOREX_REFERENCE_HOME"]) / "models"
for name in ("efficientnet-lite0.onnx", "efficientnet-lite0-features.onnx", "efficientnet-lite0.grad.onnx"):
    assert (fetched / "models" / name).read_bytes() == (reference_models / name).read_bytes(), name
top = borex.Engine().classify(CHELSEA, top=1)[0]
assert 281 <= top.id <= 285, top
ref = run([REFERENCE, "classify", str(CHELSEA)], env=REFERENCE_ENV)
p = run([str(VENV_BIN / "borex"), "classify", str(CHELSEA)])
assert p.returncode == 0 and p.stdout == ref.stdout, (p.stdout, p.stderr, ref.stdout)
check(f"fetch-model: the setup's models in {fetched}; Engine() classifies chelsea.png as {top.label!r}")
# ep="cuda" with the CPU package: the fix is the onnxruntime-gpu package.
e = one_line_error(run([sys.executable, "-c", code.format(f"borex.Engine(model={str(MODEL)!r}, ep='cuda')")]),
                   "no CUDA execution provider", "pip install onnxruntime-gpu")
check(f"ep='cuda' without onnxruntime-gpu: {e}")
# Last: without the onnxruntime package.
p = run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "onnxruntime"])
assert p.returncode == 0, p.stderr
e = one_line_error(run([sys.executable, "-c", code.format(f"borex.Engine(model={str(MODEL)!r})")]),
                   "onnxruntime Python package is not installed", "pip install 'onnxruntime>=1.31,<2'")
one_line_error(run([str(VENV_BIN / "borex"), "classify", str(CHELSEA), "--model", str(MODEL)]),
               "pip install 'onnxruntime>=1.31,<2'")
check(f"without the onnxruntime package: {e}")
print("[wheel] all checks passed", file=sys.stderr)
