"""borex: explain image classifiers and refine their saliency maps with BOREx.

A thin Python layer over the native module ``borex._borex`` (Rust, PyO3):
it turns PIL images into arrays and wraps results in typed objects. Every
computation runs in Rust with the GIL released (other Python threads run
meanwhile), but an :class:`Engine`'s model calls take turns on its one ONNX
Runtime session: threads sharing an Engine overlap only the work between
model calls, about a tenth of a refine on the bundled model, so two threads
take about as long as one doing both calls (docs/benchmarks.md). For
throughput use ``refine_many`` (one model call per step for many images) or
one process per worker (docs/scale-out.md).

Example::

    import borex
    engine = borex.Engine()                      # the bundled EfficientNet-Lite0
    result = engine.refine("chelsea.png", iters=50, seed=0)
    result.refined.shape                         # (224, 224), float32
    result.report.refined.insertion             # the refined map's insertion AUC

An image is a path, an H×W×3 uint8 array, an H×W×3 float array in [0, 1]
or a PIL image; a class is an id (int) or a label name (str). Settings take
the command line's names (``--insertion-start`` is ``insertion_start``) and
defaults. Every error is a :class:`BorexError` subclass (see
:mod:`borex.errors`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union, overload

import numpy as np
import numpy.typing as npt

from . import _borex
from ._fetch import download_model
from ._package import configure as _configure
from ._package import info
from .errors import (
    BorexError,
    BorexIOError,
    BorexRuntimeError,
    ImageError,
    InternalError,
    InvalidInputError,
    MissingFileError,
    ModelError,
)
from .reports import (
    CounterfactualReport,
    CounterfactualTarget,
    Evaluation,
    PriorReport,
    Query,
    RefinedReport,
    RefineReport,
)

__all__ = [
    "BorexError",
    "BorexIOError",
    "BorexRuntimeError",
    "ClassifyResult",
    "CounterfactualReport",
    "CounterfactualResult",
    "CounterfactualTarget",
    "Engine",
    "Evaluation",
    "ImageError",
    "ImageLike",
    "InternalError",
    "InvalidInputError",
    "MissingFileError",
    "ModelCallable",
    "ModelError",
    "Prediction",
    "PriorReport",
    "Query",
    "RefineReport",
    "RefineResult",
    "RefinedReport",
    "__version__",
    "download_model",
    "info",
]

# An installed wheel: ONNX Runtime from the onnxruntime package, no checkout.
_configure()

__version__: str = _borex.__version__

#: What every method takes as an image.
ImageLike = Union[str, "os.PathLike[str]", npt.NDArray[Any], Any]
#: A class: an id or a label name.
ClassLike = Union[int, str]


#: PIL's 16-bit, 32-bit integer and float grayscale modes: ``convert("RGB")``
#: clips them to 8 bits (all white or all black), so borex converts them itself.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _wide_gray(image: Any) -> npt.NDArray[Any]:
    """A 16-bit, 32-bit or float grayscale PIL image (microscopy, medicine) as
    H×W×3, scaled as borex reads such a file by path: integers as 16-bit
    values (0–65535, rounded to 8 bits as a 16-bit PNG is), floats as values
    in [0, 1]. Any other range is refused: its scale cannot be guessed."""
    mode = str(image.mode)
    a = np.asarray(image)
    if mode != "F":
        wide = a.astype(np.int64)
        lo, hi = (int(wide.min()), int(wide.max())) if wide.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise InvalidInputError(
                f"a PIL image of mode {mode!r} with values {lo}..{hi}: borex reads integer grayscale as "
                "16-bit values (0..65535), as it reads a 16-bit PNG; scale it to [0, 1] and pass a float array"
            )
        # round(v·255/65535), the 16→8-bit rounding of the image decoder borex reads files with.
        gray: npt.NDArray[Any] = ((wide + 128) // 257).astype(np.uint8)
    else:
        f = a.astype(np.float64)
        if f.size and not (np.isfinite(f).all() and f.min() >= 0.0 and f.max() <= 1.0):
            raise InvalidInputError(
                f"a PIL image of mode 'F' with values {np.nanmin(f):g}..{np.nanmax(f):g}: borex reads float "
                "grayscale as values in [0, 1]; scale it to [0, 1] first"
            )
        gray = f
    return np.repeat(gray[..., None], 3, axis=2)


def _image(image: ImageLike) -> Any:
    """Paths and arrays pass through (the native side checks them); a PIL
    image becomes an H×W×3 array (its alpha channel dropped, as borex
    does when it decodes an RGBA file; wide grayscale scaled as by path)."""
    if isinstance(image, (str, os.PathLike, np.ndarray)):
        return image
    # PIL without importing it: borex does not need Pillow unless you pass its images.
    if hasattr(image, "convert") and hasattr(image, "mode") and hasattr(image, "size"):
        if image.mode in _WIDE_GRAY_MODES:
            return _wide_gray(image)
        return np.asarray(image.convert("RGB"))
    return image  # the native side names the type it cannot take


def _many(value: Any, name: str) -> list[Any]:
    """A list of images or priors; a single path, string or bytes is refused
    (iterating it would give one image per character)."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise InvalidInputError(
            f"{name} must be a list (one item per image), got a single {type(value).__name__} {value!r}: "
            f"pass [{value!r}] for one image"
        )
    try:
        return list(value)
    except TypeError:
        raise InvalidInputError(f"{name} must be a list (one item per image), got {type(value).__name__}") from None


_T = TypeVar("_T")


def _quiet_wayland_probe(make: Callable[[], _T]) -> _T:
    """Run ``make`` (the native engine's construction, which looks for a GPU)
    with ``XDG_RUNTIME_DIR`` naming a private empty folder when the
    environment has none, as in most containers and CI jobs. Mesa's Vulkan
    driver probes Wayland while adapters are listed, and libwayland prints
    "error: XDG_RUNTIME_DIR is invalid or not set" on a run that works;
    borex never draws to a screen. The user's environment is restored after."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current):
        return make()
    with tempfile.TemporaryDirectory(prefix="borex-xdg-") as private:
        os.environ["XDG_RUNTIME_DIR"] = private
        try:
            return make()
        finally:
            if current is None:
                os.environ.pop("XDG_RUNTIME_DIR", None)
            else:
                os.environ["XDG_RUNTIME_DIR"] = current


@dataclass(frozen=True)
class Prediction:
    """One of the top classes: id, label (empty without labels) and probability."""

    id: int
    label: str
    probability: float


@dataclass(frozen=True)
class ClassifyResult:
    """The top classes of one image, most probable first."""

    predictions: list[Prediction]

    def __iter__(self) -> Any:
        return iter(self.predictions)

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, i: int) -> Prediction:
        return self.predictions[i]


@dataclass(frozen=True)
class RefineResult:
    """A refined saliency map and what produced it.

    ``refined`` and ``prior`` are H×W float32 maps at the model input's
    resolution in the same units (the prior as the GP used it, scaled to mean
    |S0| = 0.1, and the posterior mean): the arrays ``refined.npy`` and
    ``prior.npy`` of ``borex refine``. ``queries`` lists every box queried,
    in order (:class:`Query`: row, column, half-width ``size``, ``p_inside``,
    ``p_outside``, objective ``f``); ``report`` is what ``borex refine`` writes
    to report.json, typed (:class:`RefineReport`). ``refined_full`` is the map at the original image's
    resolution with ``full_res=True`` (``refined_full.npy``), else None.
    """

    refined: npt.NDArray[np.float32]
    prior: npt.NDArray[np.float32]
    queries: list[Query]
    report: RefineReport = field(repr=False)
    refined_full: npt.NDArray[np.float32] | None = field(default=None, repr=False)

    @property
    def class_id(self) -> int:
        """The class the maps explain."""
        return self.report.class_id

    @classmethod
    def _from_native(cls, t: tuple[Any, Any, list[dict[str, Any]], dict[str, Any], Any]) -> RefineResult:
        refined, prior, queries, report, full = t
        return cls(refined, prior, [Query.from_dict(q) for q in queries], RefineReport.from_dict(report), full)


@dataclass(frozen=True)
class CounterfactualResult:
    """A visual counterfactual: the changed image and the change.

    ``counterfactual`` is H×W×3 float32 in [0, 1] at the model input's
    resolution (``counterfactual.npy`` of ``borex counterfactual`` is the same
    values as 3×H×W), ``change`` the signed change summed over the channels
    (H×W, ``change.npy``);
    ``report`` is what ``borex counterfactual`` writes to report.json, typed
    (:class:`CounterfactualReport`).
    """

    counterfactual: npt.NDArray[np.float32]
    change: npt.NDArray[np.float32]
    report: CounterfactualReport = field(repr=False)


#: A model callable: an N×3×H×W float32 array in, N×classes scores out
#: (numpy, or anything ``numpy.asarray`` or ``numpy.from_dlpack`` reads).
ModelCallable = Callable[[npt.NDArray[np.float32]], Any]


class Engine:
    """A classifier with its execution provider and compute device, loaded
    once and reused by every call. Several threads may share one; their
    model calls take turns (see the module's docstring).

    Args:
        model: an ONNX classifier (N×3×H×W in, N×classes out), or a Python
            callable that takes an N×3×H×W float32 array (preprocessed as
            ``input_size``, ``resize``, ``mean`` and ``std`` say) and returns
            N×classes scores: numpy, or anything with ``__array__`` or
            ``__dlpack__`` (a torch tensor on the CPU). ``None`` is the
            bundled EfficientNet-Lite0 that ``scripts/setup.sh`` built, in the
            assets folder (``BOREX_HOME``, else ``~/.local/share/borex``).
            A callable works with every black-box method (classify, RISE,
            occlusion, undesirable, refine, refine_many, evaluate); the CAM
            family and counterfactuals need an ONNX model's graph.
        device: where borex's compute kernels run: ``"auto"``, ``"gpu"`` or ``"cpu"``.
        ep: ONNX Runtime's execution provider: ``"cpu"`` or ``"cuda"`` (an ONNX model only).
        labels: a labels file (one name per line) when the model has no
            sidecar; for a callable also a list of names, one per class.
        input_size: a callable's input, ``224`` or ``(height, width)`` (default 224).
        resize: the shorter side the image is resized to before the centre
            crop (default 256 when ``input_size`` is not given, else none: the
            image is resized to the input size, as ``--input-size`` does).
        mean, std: per-channel (R, G, B) on 0–255 values, as ``--mean``/``--std``
            take them (default torchvision's ImageNet values, ×255).
        output: ``"logits"`` (borex applies softmax) or ``"probabilities"``;
            default: detected from the first call.

    A callable that raises or returns unusable scores (wrong shape, dtype or
    batch size, NaN or infinity, another class count than ``labels``) raises
    :class:`ModelError` naming the call, with the callable's exception as its
    ``__cause__``; Ctrl-C while it runs raises ``KeyboardInterrupt``.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelCallable | None = None,
        device: str = "auto",
        ep: str = "cpu",
        labels: str | os.PathLike[str] | Sequence[str] | None = None,
        *,
        input_size: int | tuple[int, int] | None = None,
        resize: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        output: Literal["logits", "probabilities"] | None = None,
    ) -> None:
        native_model: str | ModelCallable | None
        if model is None or isinstance(model, (str, os.PathLike)):
            native_model = None if model is None else os.fspath(model)
        elif callable(model):
            native_model = model
        else:
            raise TypeError(
                "model must be a path to an ONNX file or a callable (an N×3×H×W float32 array in, "
                f"N×classes scores out), not {type(model).__name__}"
            )
        native_labels: str | list[str] | None
        if labels is None or isinstance(labels, (str, os.PathLike)):
            native_labels = None if labels is None else os.fspath(labels)
        else:
            native_labels = list(labels)
        self._native = _quiet_wayland_probe(
            lambda: _borex.Engine(
                native_model,
                device,
                ep,
                native_labels,
                input_size,
                resize,
                None if mean is None else list(mean),
                None if std is None else list(std),
                output,
            )
        )
        if isinstance(native_model, str):
            sidecar = os.path.splitext(native_model)[0] + ".json"
            if os.path.isfile(native_model) and not os.path.exists(sidecar):
                # As the command line's note, after the load (a model that fails gets its error alone): a model
                # trained otherwise gives plausible but wrong scores.
                warnings.warn(
                    f"no {sidecar} beside the model: using torchvision's ImageNet preprocessing (224×224 centre "
                    "crop of the short side resized to 256, torchvision's mean/std); docs/models.md says how to "
                    "declare yours in that file",
                    UserWarning,
                    stacklevel=2,
                )

    def __repr__(self) -> str:
        native = getattr(self, "_native", None)  # None when __init__ raised
        return f"borex.Engine({native.describe() if native else 'not loaded'})"

    def classify(self, image: ImageLike, top: int = 5) -> ClassifyResult:
        """The ``top`` most probable classes of ``image``."""
        rows = self._native.classify(_image(image), top)
        return ClassifyResult([Prediction(int(i), str(label), float(p)) for i, label, p in rows])

    def explain(self, image: ImageLike, method: str = "rise", **settings: Any) -> npt.NDArray[np.float32]:
        """A saliency map (H×W float32 at the model input's resolution) by ``method``:
        ``rise``, ``rise-fast``, ``occlusion``, ``cam``, ``gradcam``, ``gradcam++``, ``cameras``
        or ``undesirable`` (its signed map). Settings as ``borex explain``'s:
        ``class_``, ``seed``, ``masks``, ``window``, ``stride``, ``scales``, ``baseline``, ``batch``."""
        out: npt.NDArray[np.float32] = self._native.explain(_image(image), method, settings)
        return out

    def refine(
        self,
        image: ImageLike,
        prior: str | npt.NDArray[Any] = "rise-fast",
        iters: int | None = None,
        seed: int = 0,
        **settings: Any,
    ) -> RefineResult:
        """Refine a saliency map of ``image`` with BOREx.

        ``prior`` is a method name (as :meth:`explain` takes) or a map: an
        H×W float array at the model input's size. Settings as ``borex
        refine``'s: ``class_``, ``sizes``, ``kappa``, ``gain``,
        ``fixed_length_scales``, ``refit_every``, ``stride``, ``baseline``,
        ``objective``, ``readout``, ``prior_mean``, ``relative_gain``,
        ``insertion_start``, ``metrics`` (``no_metrics`` inverted), ``batch``,
        ``budget`` (model evaluations of prior and queries together, split by
        borex, as the report's notes say; it sets the queries, so ``iters``
        with it is refused as ``borex refine`` refuses the pair). ``iters``
        defaults to 50. The same settings give the same maps as ``borex
        refine``, bit for bit.
        """
        return RefineResult._from_native(self._native.refine(_image(image), prior, iters, seed, settings))

    @overload
    def refine_many(
        self,
        images: Iterable[ImageLike],
        priors: Sequence[str | npt.NDArray[Any]] | None = ...,
        lockstep: int = ...,
        iters: int | None = ...,
        seed: int = ...,
        prior: str | npt.NDArray[Any] = ...,
        *,
        errors: Literal["raise"] = ...,
        **settings: Any,
    ) -> list[RefineResult]: ...

    @overload
    def refine_many(
        self,
        images: Iterable[ImageLike],
        priors: Sequence[str | npt.NDArray[Any]] | None = ...,
        lockstep: int = ...,
        iters: int | None = ...,
        seed: int = ...,
        prior: str | npt.NDArray[Any] = ...,
        *,
        errors: Literal["return"],
        **settings: Any,
    ) -> list[RefineResult | BorexError]: ...

    def refine_many(
        self,
        images: Iterable[ImageLike],
        priors: Sequence[str | npt.NDArray[Any]] | None = None,
        lockstep: int = 8,
        iters: int | None = None,
        seed: int = 0,
        prior: str | npt.NDArray[Any] = "rise-fast",
        *,
        errors: Literal["raise", "return"] = "raise",
        **settings: Any,
    ) -> list[RefineResult] | list[RefineResult | BorexError]:
        """Refine many images, ``lockstep`` BO loops advancing together (one model call
        per step for all of them). Each result equals :meth:`refine` of that image
        with the same settings. ``prior`` is every image's prior, as :meth:`refine`
        takes it; ``priors`` instead gives one per image (a method name or a map).

        An image that fails (an unreadable file, say) does not stop the others.
        ``errors="raise"`` (the default) raises the first failure once every
        image is done; ``errors="return"`` returns one item per image, the
        failed ones as their exception (a :class:`BorexError`, its message
        naming ``images[i]``) in their slot. Bad arguments raise either way."""
        if errors not in ("raise", "return"):
            raise InvalidInputError(f'errors must be "raise" or "return", got {errors!r}')
        imgs = [_image(i) for i in _many(images, "images")]
        given = None if priors is None else _many(priors, "priors")
        results = [
            r if isinstance(r, BorexError) else RefineResult._from_native(r)
            for r in self._native.refine_many(imgs, prior, given, lockstep, iters, seed, settings)
        ]
        if errors == "return":
            return results
        ok: list[RefineResult] = []
        for r in results:
            if isinstance(r, BorexError):
                raise r
            ok.append(r)
        return ok

    def evaluate(self, image: ImageLike, saliency_map: npt.NDArray[Any], **settings: Any) -> Evaluation:
        """Insertion and deletion AUC of ``saliency_map`` (H×W at the model input's size)
        for ``image``'s class (``class_`` setting; default top-1), as ``borex refine``
        reports them (:class:`Evaluation`: ``insertion``, ``deletion``,
        ``insertion_by_start``). Settings: ``class_``, ``insertion_start``
        (e.g. ``"blur,zero"``), ``batch``. The map is copied before the work
        starts: another thread may change the array meanwhile."""
        return Evaluation.from_dict(self._native.evaluate(_image(image), saliency_map, settings))

    @overload
    def counterfactual(
        self,
        image: ImageLike,
        target: ClassLike,
        eps: float = ...,
        p: float = ...,
        *,
        targets: None = ...,
        **settings: Any,
    ) -> CounterfactualResult: ...

    @overload
    def counterfactual(
        self, image: ImageLike, target: None = None, eps: float = ..., p: float = ..., *, targets: int, **settings: Any
    ) -> list[CounterfactualResult]: ...

    def counterfactual(
        self,
        image: ImageLike,
        target: ClassLike | None = None,
        eps: float = 12.0,
        p: float = 1.5,
        *,
        targets: int | None = None,
        **settings: Any,
    ) -> CounterfactualResult | list[CounterfactualResult]:
        """A sparse visual counterfactual towards class ``target`` (Auto-Frank-Wolfe in the
        l_p ball of radius ``eps``); or, with ``targets=k`` instead of ``target``, one
        for each of the k most probable classes other than the predicted one (a list,
        in that order, from one batched run: ``borex counterfactual --targets k``).
        Settings as ``borex counterfactual``'s: ``steps``, ``restarts``, ``seed``,
        ``change_threshold``, ``batch``. Needs the model's gradient graph (the bundled
        model has one)."""
        per_target, report = self._native.counterfactual(_image(image), target, targets, eps, p, settings)
        typed = CounterfactualReport.from_dict(report)
        results = [CounterfactualResult(cf, change, typed) for cf, change in per_target]
        return results if targets is not None else results[0]
