"""Type stubs of the native module `borex._borex` (Rust, PyO3). Use the
`borex` package's `Engine`, which wraps this one."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, final

import numpy as np
import numpy.typing as npt

from .errors import BorexError

__all__ = ["Engine", "__version__", "_info", "_set_package"]

__version__: str

_Map = npt.NDArray[np.float32]
_RefineTuple = tuple[_Map, _Map, list[dict[str, Any]], dict[str, Any], _Map | None]

@final
class Engine:
    def __new__(
        cls,
        model: str | os.PathLike[str] | Callable[[npt.NDArray[np.float32]], Any] | None = None,
        device: str = "auto",
        ep: str = "cpu",
        labels: str | os.PathLike[str] | list[str] | None = None,
        input_size: int | tuple[int, int] | None = None,
        resize: int | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        output: str | None = None,
    ) -> Engine: ...
    def describe(self) -> str: ...
    def classify(self, image: Any, top: int) -> list[tuple[int, str, float]]: ...
    def explain(self, image: Any, method: str, settings: dict[str, Any]) -> _Map: ...
    def refine(
        self, image: Any, prior: str | npt.NDArray[Any], iters: int | None, seed: int, settings: dict[str, Any]
    ) -> _RefineTuple: ...
    def refine_many(
        self,
        images: list[Any],
        prior: str | npt.NDArray[Any],
        priors: list[str | npt.NDArray[Any]] | None,
        lockstep: int,
        iters: int | None,
        seed: int,
        settings: dict[str, Any],
    ) -> list[_RefineTuple | BorexError]: ...
    def evaluate(self, image: Any, saliency_map: npt.NDArray[Any], settings: dict[str, Any]) -> dict[str, Any]: ...
    def counterfactual(
        self,
        image: Any,
        target: int | str | None,
        targets: int | None,
        eps: float,
        p: float,
        settings: dict[str, Any],
    ) -> tuple[list[tuple[npt.NDArray[np.float32], _Map]], dict[str, Any]]: ...

# The development build's test hooks (`_time_rust_refine`, `_panic_for_test`, cargo feature
# test-hooks) are not in the wheel, so not here.
def _set_package(ort_lib: str | None) -> None: ...
def _info() -> dict[str, Any]: ...
