"""numpy in, numpy out, for every method, each against an independent
reference: ONNX Runtime driven from numpy (classify), the `borex` command
line of this checkout (explain, refine, evaluate, counterfactual)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

import borex

from conftest import BINARY, HOME, ITERS, cli_explain, cli_refine


def _square_256(path: Path) -> np.ndarray:
    """The image cropped to a 256×256 square: the bundled model's resize
    (short side 256) leaves it as it is, so its model input is a plain crop."""
    a = np.asarray(Image.open(path).convert("RGB"))
    h, w, _ = a.shape
    s = min(h, w)
    sq = a[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return np.asarray(Image.fromarray(sq).resize((256, 256), Image.BILINEAR))


def test_classify_matches_onnxruntime_from_numpy(engine: borex.Engine, chelsea: Path) -> None:
    img = _square_256(chelsea)
    # Reference: the sidecar's preprocessing (centre crop 224, (x - 127) / 128, N×C×H×W) in numpy, then ONNX Runtime.
    x = ((img[16:240, 16:240].astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
    sess = ort.InferenceSession(str(HOME / "models" / "efficientnet-lite0.onnx"), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0][0].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    want = np.argsort(-probs)[:5]

    got = engine.classify(img, top=5)
    assert [p.id for p in got] == list(want)
    np.testing.assert_allclose([p.probability for p in got], probs[want], rtol=1e-4, atol=1e-6)
    labels = (HOME / "labels" / "imagenet1k.txt").read_text().splitlines()
    assert [p.label for p in got] == [labels[i] for i in want]


def test_classify_path_pil_and_array_agree(engine: borex.Engine, chelsea: Path) -> None:
    by_path = engine.classify(chelsea, top=3)
    by_pil = engine.classify(Image.open(chelsea), top=3)
    by_array = engine.classify(np.asarray(Image.open(chelsea).convert("RGB")), top=3)
    by_float = engine.classify(np.asarray(Image.open(chelsea).convert("RGB")) / 255.0, top=3)
    assert by_path == by_pil == by_array == by_float
    assert len(by_path) == 3


def test_explain_matches_cli(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    want = cli_explain(chelsea, tmp_path / "cli", "rise-fast", "--seed", "3")
    got = engine.explain(chelsea, method="rise-fast", seed=3)
    assert got.dtype == np.float32 and got.shape == want.shape == (224, 224)
    assert np.array_equal(got, want)


def test_explain_array_input_equals_the_same_pixels_as_a_file(
    engine: borex.Engine, chelsea: Path, tmp_path: Path
) -> None:
    # A non-square array, so the resize and centre crop are exercised; the CLI reads the same pixels from a PNG.
    a = np.asarray(Image.open(chelsea).convert("RGB"))[10:250, 20:400]
    Image.fromarray(a).save(tmp_path / "crop.png")
    want = cli_explain(tmp_path / "crop.png", tmp_path / "cli", "gradcam")
    got = engine.explain(a, method="gradcam")
    assert np.array_equal(got, want)


def test_refine_numpy_prior_matches_cli_with_npy_prior(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    # A prior made in numpy (a centred Gaussian blob, float64 to exercise the conversion), given to both.
    yy, xx = np.mgrid[0:224, 0:224]
    prior = np.exp(-((yy - 100.0) ** 2 + (xx - 130.0) ** 2) / (2 * 40.0**2))
    np.save(tmp_path / "prior.npy", prior.astype(np.float32))
    want, want_prior, _ = cli_refine(
        chelsea, tmp_path / "cli", "--prior", str(tmp_path / "prior.npy"), "--iters", str(ITERS), "--no-metrics"
    )
    got = engine.refine(chelsea, prior=prior, iters=ITERS, seed=0, metrics=False)
    assert got.refined.dtype == np.float32 and got.refined.shape == (224, 224)
    assert np.array_equal(got.refined, want)
    assert np.array_equal(got.prior, want_prior)
    assert len(got.queries) == ITERS


def test_evaluate_matches_the_cli_report(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    refined, prior, report = cli_refine(
        chelsea, tmp_path / "cli", "--iters", str(ITERS), "--insertion-start", "blur,zero"
    )
    for m, key in ((prior, "prior"), (refined, "refined")):
        got = engine.evaluate(chelsea, m, insertion_start="blur,zero")
        want = report[key]
        for metric in ("insertion", "deletion", "insertion_blur", "insertion_zero"):
            assert got[metric] == want[metric], (key, metric)


def test_counterfactual_matches_cli(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    import subprocess

    out = tmp_path / "cli"
    subprocess.run(
        [str(BINARY), "counterfactual", str(chelsea), "--target", "1", "--steps", "4", "-o", str(out), "--quiet"],
        check=True,
        capture_output=True,
    )
    got = engine.counterfactual(chelsea, target=1, eps=12.0, p=1.5, steps=4)
    assert got.counterfactual.dtype == np.float32
    # The command line writes channels first (3×H×W); Python gets H×W×3.
    assert np.array_equal(got.counterfactual, np.load(out / "counterfactual.npy").transpose(1, 2, 0))
    assert np.array_equal(got.change, np.load(out / "change.npy"))
    # The change is the counterfactual minus the model input's pixels, inside the l1.5 ball.
    assert np.sum(np.abs(got.change.astype(np.float64)) ** 1.5) ** (1 / 1.5) <= 12.0 * (1 + 1e-4)


def test_counterfactual_towards_several_targets(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    # Before: Python took one target only; targets=k is the command line's --targets k.
    import subprocess

    out = tmp_path / "cli"
    subprocess.run(
        [str(BINARY), "counterfactual", str(chelsea), "--targets", "2", "--steps", "4", "-o", str(out), "--quiet"],
        check=True,
        capture_output=True,
    )
    got = engine.counterfactual(chelsea, targets=2, steps=4)
    assert isinstance(got, list) and len(got) == 2
    # The targets are the two most probable classes after the predicted one (classify ranks them independently).
    ranked = [p.id for p in engine.classify(chelsea, top=3)]
    assert [t["class"] for t in got[0].report["targets"]] == ranked[1:3]
    for i, r in enumerate(got):
        # Each target's result against the single-target route, and the command line's files for it.
        one = engine.counterfactual(chelsea, target=ranked[1 + i], steps=4)
        assert np.allclose(r.counterfactual, one.counterfactual, atol=1e-5), i
        assert np.allclose(r.change, one.change, atol=1e-4), i
    # The same batched run as `borex counterfactual --targets 2`: its files, bit for bit.
    import json

    cli = json.loads((out / "report.json").read_text())
    assert [t["class"] for t in cli["targets"]] == ranked[1:3]
    for r, t in zip(got, cli["targets"]):
        assert np.array_equal(r.counterfactual, np.load(out / t["files"]["npy"]).transpose(1, 2, 0))
        assert np.array_equal(r.change, np.load(out / t["files"]["change"]))
