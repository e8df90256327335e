"""Typed reports: what ``borex refine``, ``borex counterfactual`` and
:meth:`borex.Engine.evaluate` report, as frozen dataclasses.

Each is built from the native module's report (the ``report.json`` of the
command line, as a dict): the fields people read are typed attributes;
``to_dict()`` gives the whole report (a fresh copy, e.g. for ``json.dump``),
and ``report["key"]`` reads one of its ``report.json`` keys, as the dicts of
earlier versions did.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CounterfactualReport",
    "CounterfactualTarget",
    "Evaluation",
    "PriorReport",
    "Query",
    "RefineReport",
    "RefinedReport",
]


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _by_start(d: Mapping[str, Any]) -> dict[str, float]:
    """``insertion_<start>`` keys (``insertion_blur``, ``insertion_zero``) as ``{start: AUC}``."""
    return {k[len("insertion_") :]: float(v) for k, v in d.items() if k.startswith("insertion_") and v is not None}


@dataclass(frozen=True)
class _Report:
    """The report as given (``to_dict``, ``[key]``); not compared, not shown."""

    _raw: Mapping[str, Any] = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The whole report, as ``report.json`` holds it (a copy)."""
        return copy.deepcopy(dict(self._raw))

    def __getitem__(self, key: str) -> Any:
        """One ``report.json`` key, e.g. ``report["class"]``."""
        return self._raw[key]


@dataclass(frozen=True)
class Evaluation(_Report):
    """Insertion and deletion AUC of a map for one class (:meth:`borex.Engine.evaluate`).

    ``insertion`` is the AUC from the first insertion start;
    ``insertion_by_start`` has one AUC per start (``{"blur": …, "zero": …}``).
    """

    class_id: int = 0
    label: str | None = None
    probability: float = 0.0
    insertion: float | None = None
    deletion: float | None = None
    insertion_by_start: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evaluation:
        return cls(
            d,
            class_id=int(d["class"]),
            label=d.get("label"),
            probability=float(d["probability"]),
            insertion=_float(d.get("insertion")),
            deletion=_float(d.get("deletion")),
            insertion_by_start=_by_start(d),
            notes=tuple(d.get("notes") or ()),
        )


@dataclass(frozen=True)
class Query(_Report):
    """One box the refinement queried: centre ``row``, ``col``, half-width
    ``size`` (pixels of the model input), the class probability with only the
    box shown (``p_inside``) and with it hidden (``p_outside``), and the
    objective ``f``."""

    row: int = 0
    col: int = 0
    size: int = 0
    p_inside: float = 0.0
    p_outside: float = 0.0
    f: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Query:
        return cls(
            d,
            row=int(d["row"]),
            col=int(d["col"]),
            size=int(d["size"]),
            p_inside=float(d["p_inside"]),
            p_outside=float(d["p_outside"]),
            f=float(d["f"]),
        )


@dataclass(frozen=True)
class PriorReport(_Report):
    """The prior: the method that made it and its AUCs (None with ``metrics=False``)."""

    method: str = ""
    insertion: float | None = None
    deletion: float | None = None
    insertion_by_start: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PriorReport:
        return cls(
            d,
            method=str(d.get("method", "")),
            insertion=_float(d.get("insertion")),
            deletion=_float(d.get("deletion")),
            insertion_by_start=_by_start(d),
        )


@dataclass(frozen=True)
class RefinedReport(_Report):
    """The refined map: its AUCs (None with ``metrics=False``) and the GP's fit."""

    insertion: float | None = None
    deletion: float | None = None
    insertion_by_start: Mapping[str, float] = field(default_factory=dict)
    length_scales: tuple[float, ...] = ()
    fit_failures: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RefinedReport:
        return cls(
            d,
            insertion=_float(d.get("insertion")),
            deletion=_float(d.get("deletion")),
            insertion_by_start=_by_start(d),
            length_scales=tuple(float(x) for x in d.get("length_scales") or ()),
            fit_failures=int(d.get("fit_failures") or 0),
        )


@dataclass(frozen=True)
class RefineReport(_Report):
    """What ``borex refine`` writes to report.json, for one image.

    ``settings``, ``timings_ms`` and ``device`` are the file's objects as they
    are (read-only mappings); the queries are :attr:`RefineResult.queries`.
    """

    class_id: int = 0
    label: str | None = None
    probability: float = 0.0
    image: str | None = None
    model: str = ""
    model_evaluations: int = 0
    prior: PriorReport = field(default_factory=lambda: PriorReport({}))
    refined: RefinedReport = field(default_factory=lambda: RefinedReport({}))
    notes: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)
    timings_ms: Mapping[str, float] = field(default_factory=dict, repr=False)
    device: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RefineReport:
        return cls(
            d,
            class_id=int(d["class"]),
            label=d.get("label"),
            probability=float(d["probability"]),
            image=d.get("image"),
            model=str(d.get("model", "")),
            model_evaluations=int(d.get("model_evaluations") or 0),
            prior=PriorReport.from_dict(d.get("prior") or {}),
            refined=RefinedReport.from_dict(d.get("refined") or {}),
            notes=tuple(d.get("notes") or ()),
            settings=d.get("settings") or {},
            timings_ms=d.get("timings_ms") or {},
            device=d.get("device") or {},
        )


@dataclass(frozen=True)
class CounterfactualTarget(_Report):
    """One target class of a counterfactual: its probability before and after,
    whether it won (``success``: P(target) > 0.5 after), how many pixels changed."""

    class_id: int = 0
    label: str | None = None
    probability_before: float = 0.0
    probability_after: float = 0.0
    predicted_after: int = 0
    success: bool = False
    changed_pixels: int = 0
    changed_fraction: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CounterfactualTarget:
        return cls(
            d,
            class_id=int(d["class"]),
            label=d.get("label"),
            probability_before=float(d["probability_before"]),
            probability_after=float(d["probability_after"]),
            predicted_after=int(d["predicted_after"]),
            success=bool(d["success"]),
            changed_pixels=int(d["changed_pixels"]),
            changed_fraction=float(d["changed_fraction"]),
        )


@dataclass(frozen=True)
class CounterfactualReport(_Report):
    """What ``borex counterfactual`` writes to report.json: the image's own
    class (``start_*``) and one entry per target class."""

    start_class: int = 0
    start_label: str | None = None
    start_probability: float = 0.0
    targets: tuple[CounterfactualTarget, ...] = ()
    model_calls: int = 0
    notes: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CounterfactualReport:
        return cls(
            d,
            start_class=int(d["start_class"]),
            start_label=d.get("start_label"),
            start_probability=float(d["start_probability"]),
            targets=tuple(CounterfactualTarget.from_dict(t) for t in d.get("targets") or ()),
            model_calls=int(d.get("model_calls") or 0),
            notes=tuple(d.get("notes") or ()),
            settings=d.get("settings") or {},
        )
