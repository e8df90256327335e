"""borex: explain image classifiers and refine their saliency maps with BOREx.

A thin Python layer over the native module ``borex._borex`` (Rust, PyO3):
it turns PIL images into arrays and wraps results in typed objects; every
computation runs in Rust with the GIL released, so Python threads that call
one :class:`Engine` run at once.

Example::

    import borex
    engine = borex.Engine()                      # the bundled EfficientNet-Lite0
    result = engine.refine("chelsea.png", iters=50, seed=0)
    result.refined.shape                         # (224, 224), float32
    result.report["refined"]["insertion"]

An image is a path, an H×W×3 uint8 array, an H×W×3 float array in [0, 1]
or a PIL image; a class is an id (int) or a label name (str). Settings take
the command line's names (``--insertion-start`` is ``insertion_start``) and
defaults. Every error is a :class:`BorexError` subclass (see
:mod:`borex.errors`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

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

__all__ = [
    "BorexError",
    "BorexIOError",
    "BorexRuntimeError",
    "ClassifyResult",
    "CounterfactualResult",
    "Engine",
    "ImageError",
    "ImageLike",
    "InternalError",
    "InvalidInputError",
    "MissingFileError",
    "ModelError",
    "Prediction",
    "RefineResult",
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


def _image(image: ImageLike) -> Any:
    """Paths and arrays pass through (the native side checks them); a PIL
    image becomes an H×W×3 uint8 array (its alpha channel dropped, as borex
    does when it decodes an RGBA file)."""
    if isinstance(image, (str, os.PathLike, np.ndarray)):
        return image
    # PIL without importing it: borex does not need Pillow unless you pass its images.
    if hasattr(image, "convert") and hasattr(image, "mode") and hasattr(image, "size"):
        return np.asarray(image.convert("RGB"))
    return image  # the native side names the type it cannot take


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
    in order (row, column, half-width ``size``, ``p_inside``, ``p_outside``,
    objective ``f``, ...); ``report`` is what ``borex refine`` writes to
    report.json. ``refined_full`` is the map at the original image's
    resolution with ``full_res=True`` (``refined_full.npy``), else None.
    """

    refined: npt.NDArray[np.float32]
    prior: npt.NDArray[np.float32]
    queries: list[dict[str, Any]]
    report: dict[str, Any] = field(repr=False)
    refined_full: npt.NDArray[np.float32] | None = field(default=None, repr=False)

    @property
    def class_id(self) -> int:
        """The class the maps explain."""
        return int(self.report["class"])


@dataclass(frozen=True)
class CounterfactualResult:
    """A visual counterfactual: the changed image and the change.

    ``counterfactual`` is H×W×3 float32 in [0, 1] at the model input's
    resolution (``counterfactual.npy`` of ``borex counterfactual`` is the same
    values as 3×H×W), ``change`` the signed change summed over the channels
    (H×W, ``change.npy``);
    ``report`` is what ``borex counterfactual`` writes to report.json.
    """

    counterfactual: npt.NDArray[np.float32]
    change: npt.NDArray[np.float32]
    report: dict[str, Any] = field(repr=False)


class Engine:
    """A classifier with its execution provider and compute device, loaded
    once and reused by every call (and by several threads at once).

    Args:
        model: an ONNX classifier (N×3×H×W in, N×classes out). ``None`` is the
            bundled EfficientNet-Lite0 that ``scripts/setup.sh`` built, in the
            assets folder (``BOREX_HOME``, else ``~/.local/share/borex``).
        device: where borex's compute kernels run: ``"auto"``, ``"gpu"`` or ``"cpu"``.
        ep: ONNX Runtime's execution provider: ``"cpu"`` or ``"cuda"``.
        labels: a labels file (one name per line) when the model has no sidecar.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "auto",
        ep: str = "cpu",
        labels: str | os.PathLike[str] | None = None,
    ) -> None:
        self._native = _borex.Engine(
            None if model is None else os.fspath(model),
            device,
            ep,
            None if labels is None else os.fspath(labels),
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
        iters: int = 50,
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
        borex; replaces ``iters``). The same settings give the same maps as
        ``borex refine``, bit for bit.
        """
        return RefineResult(*self._native.refine(_image(image), prior, iters, seed, settings))

    def refine_many(
        self,
        images: Iterable[ImageLike],
        priors: Sequence[str | npt.NDArray[Any]] | None = None,
        lockstep: int = 8,
        iters: int = 50,
        seed: int = 0,
        **settings: Any,
    ) -> list[RefineResult]:
        """Refine many images, ``lockstep`` BO loops advancing together (one model call
        per step for all of them). Each result equals :meth:`refine` of that image
        with the same settings. ``priors``: one per image (a method name or a map);
        ``None`` gives every image the ``prior`` setting (``"rise-fast"``)."""
        imgs = [_image(i) for i in images]
        given = None if priors is None else list(priors)
        results = self._native.refine_many(imgs, given, lockstep, iters, seed, settings)
        return [RefineResult(*r) for r in results]

    def evaluate(self, image: ImageLike, saliency_map: npt.NDArray[Any], **settings: Any) -> dict[str, Any]:
        """Insertion and deletion AUC of ``saliency_map`` (H×W at the model input's size)
        for ``image``'s class (``class_`` setting; default top-1), as ``borex refine``
        reports them: ``{"insertion": …, "deletion": …, "insertion_blur": …}``.
        Settings: ``class_``, ``insertion_start`` (e.g. ``"blur,zero"``), ``batch``."""
        out: dict[str, Any] = self._native.evaluate(_image(image), saliency_map, settings)
        return out

    def counterfactual(
        self, image: ImageLike, target: ClassLike, eps: float = 12.0, p: float = 1.5, **settings: Any
    ) -> CounterfactualResult:
        """A sparse visual counterfactual towards class ``target`` (Auto-Frank-Wolfe in the
        l_p ball of radius ``eps``). Settings as ``borex counterfactual``'s: ``steps``,
        ``restarts``, ``seed``, ``change_threshold``, ``batch``. Needs the model's gradient
        graph (the bundled model has one)."""
        cf, change, report = self._native.counterfactual(_image(image), target, eps, p, settings)
        return CounterfactualResult(cf, change, report)
