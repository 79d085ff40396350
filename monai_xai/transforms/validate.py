"""Checks that a loaded item can be trained on, naming the file and the problem when it cannot.

Bad inputs (an all-black export, a NaN from a broken conversion, a mask saved at another size, a label
from the wrong scheme) otherwise surface as a silent loss of accuracy or a shape error deep inside a
network. These checks run right after loading, where the file name is still known.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import convert_to_numpy, look_up_option, optional_import

from monai_xai.errors import InputError
from monai_xai.transforms.io import SOURCE_KEY

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

__all__ = ["PROBLEM_KINDS", "ValidateItemd", "diagnose_item", "validate_datalist"]

logger = logging.getLogger(__name__)

#: Kinds of problem that :class:`ValidateItemd` counts, in the order it checks them.
PROBLEM_KINDS = (
    "spatial_dims",
    "channels",
    "nonfinite",
    "constant",
    "missing_mask",
    "size_mismatch",
    "label_range",
)
# Unsigned types that torch stores but cannot reduce (max/min) on the CPU.
_NO_REDUCTION_DTYPES = (torch.uint16, torch.uint32, torch.uint64)
#: :func:`validate_datalist` shows a progress bar from this many items on, unless told otherwise.
PROGRESS_MIN_ITEMS = 200


class ValidateItemd(MapTransform):
    """Check a loaded, channel-first item; raise or skip it when it cannot be used.

    Checks: the image has ``spatial_dims`` spatial dimensions (before any resize or slicing could hide a 3D
    volume among 2D images) and ``expected_channels`` channels; it holds no NaN or infinite value; it is not
    constant (nothing to learn or explain); a mask is present when ``require_mask``; image and mask have the
    same spatial size; the label lies in ``[0, num_classes)`` and is a whole number.

    With ``on_error="raise"`` a failing item raises :class:`~monai_xai.errors.InputError` naming the image
    file (its MetaTensor's ``filename_or_obj``, else the item's ``source``) and every problem found. With
    ``on_error="skip"`` it logs a warning, counts each problem kind in :attr:`skipped` and returns ``None``,
    so that the item can be dropped (an item with several problems counts under each of them).

    Args:
        image_key: key of the image, channel-first as made by ``LoadImageOrArrayd``.
        mask_key: key of the optional mask; a missing key or a ``None`` value means no mask.
        label_key: key of the class label; checked only when present and ``num_classes`` is given.
        num_classes: number of classes, for the label range check.
        expected_channels: required number of image channels, or ``None`` to accept any.
        spatial_dims: required number of spatial dimensions (the configuration's ``spatial_dims``), or
            ``None`` to accept any.
        require_mask: whether an item without a mask is a problem.
        on_error: ``"raise"`` or ``"skip"``.
    """

    def __init__(
        self,
        image_key: str = "image",
        mask_key: str = "mask",
        label_key: str = "label",
        num_classes: int | None = None,
        expected_channels: int | None = None,
        require_mask: bool = False,
        on_error: str = "raise",
        spatial_dims: int | None = None,
    ) -> None:
        super().__init__(keys=image_key)
        checked = look_up_option(on_error, ("raise", "skip"), default=None)
        if checked is None:
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.image_key = image_key
        self.mask_key = mask_key
        self.label_key = label_key
        self.num_classes = num_classes
        self.expected_channels = expected_channels
        self.spatial_dims = spatial_dims
        self.require_mask = require_mask
        self.on_error = checked
        self.skipped: Counter[str] = Counter()

    def __call__(self, data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any] | None:
        problems = self.find_problems(data)
        if not problems:
            return data
        error = InputError(_source(data, data[self.image_key]), "; ".join(text for _, text in problems))
        if self.on_error == "raise":
            raise error
        self.skipped.update(kind for kind, _ in problems)
        logger.warning("skipping %s", error)
        return None

    def find_problems(self, data: Mapping[Hashable, Any]) -> list[tuple[str, str]]:
        """``(kind, description)`` for every problem of ``data``; empty when the item is fine."""
        image = data.get(self.image_key)
        if image is None:
            raise InputError(_source(data, None), f"the item has no {self.image_key!r}")
        image = torch.as_tensor(image)
        if image.dtype in _NO_REDUCTION_DTYPES:
            image = image.to(torch.int64)
        problems = []
        if self.spatial_dims is not None and image.ndim - 1 != self.spatial_dims:
            problems.append(
                (
                    "spatial_dims",
                    f"image has {image.ndim - 1} spatial dimensions (channel-first shape "
                    f"{tuple(image.shape)}), expected {self.spatial_dims} (spatial_dims={self.spatial_dims})",
                )
            )
        if self.expected_channels is not None and image.shape[0] != self.expected_channels:
            problems.append(
                ("channels", f"image has {image.shape[0]} channels, expected {self.expected_channels}")
            )
        if image.numel() == 0:
            problems.append(("constant", f"image is empty (shape {tuple(image.shape)})"))
        elif not bool(torch.isfinite(image).all()):
            nan, inf = int(torch.isnan(image).sum()), int(torch.isinf(image).sum())
            problems.append(("nonfinite", f"image has {nan} NaN and {inf} infinite values"))
        elif bool(image.max() == image.min()):
            problems.append(("constant", f"image is constant (every value is {image.flatten()[0].item():g})"))

        mask = data.get(self.mask_key)
        if mask is None:
            if self.require_mask:
                problems.append(("missing_mask", f"no {self.mask_key!r} given but a mask is required"))
        elif tuple(mask.shape[1:]) != tuple(image.shape[1:]):
            name = mask.meta.get("filename_or_obj") if isinstance(mask, MetaTensor) else None
            where = f" {name}" if name else ""
            problems.append(
                (
                    "size_mismatch",
                    f"mask{where} has spatial size {tuple(mask.shape[1:])}, "
                    f"the image {tuple(image.shape[1:])}",
                )
            )

        if self.num_classes is not None and self.label_key in data:
            problem = _label_problem(data[self.label_key], self.num_classes)
            if problem:
                problems.append(("label_range", problem))
        return problems


def diagnose_item(
    item: Mapping[Hashable, Any],
    loader: Callable[[Mapping[Hashable, Any]], Mapping[Hashable, Any]],
    validator: ValidateItemd,
) -> tuple[list[str], str] | None:
    """Load ``item`` and check it: ``None`` when it can be used, else its problem kinds (``"unreadable"``
    or :data:`PROBLEM_KINDS`) and a message that names the file.

    Loading errors other than :class:`~monai_xai.errors.InputError` (directly or as the cause of a
    transform error) propagate, as they point at a bug rather than at a bad file.
    """
    try:
        loaded = loader(item)
    except Exception as e:
        error = _input_error_in(e)
        if error is None:
            raise
        return ["unreadable"], str(error)
    problems = validator.find_problems(loaded)
    if not problems:
        return None
    where = _source(loaded, loaded.get(validator.image_key))
    return [kind for kind, _ in problems], str(InputError(where, "; ".join(text for _, text in problems)))


def validate_datalist(
    datalist: Sequence[Mapping[Hashable, Any]],
    loader: Callable[[Mapping[Hashable, Any]], Mapping[Hashable, Any]],
    *,
    progress: bool | None = None,
    **checks: Any,
) -> tuple[list[Mapping[Hashable, Any]], dict[str, int]]:
    """Load and check every item of ``datalist``, before training rather than halfway through it.

    Args:
        datalist: items such as ``{"image": path, "mask": path, "label": 1}``.
        loader: turns an item into loaded tensors, e.g. ``LoadImageOrArrayd(["image", "mask"])`` or a
            ``Compose`` starting with it.
        progress: show a tqdm progress bar (on a terminal only); by default from ``PROGRESS_MIN_ITEMS``
            items on.
        checks: arguments of :class:`ValidateItemd` other than ``on_error``.

    Returns:
        The items of ``datalist`` that load and pass (as given, not loaded, so that they can go straight
        into a MONAI ``Dataset``) and the number of failures per kind: ``"unreadable"`` and each of
        :data:`PROBLEM_KINDS` (see :func:`diagnose_item`; an item with several problems counts under each).
    """
    validator = ValidateItemd(**checks)
    show = len(datalist) >= PROGRESS_MIN_ITEMS if progress is None else progress
    items = tqdm(datalist, desc="validating", unit="item", disable=None) if show and has_tqdm else datalist
    good = []
    counts = dict.fromkeys(("unreadable", *PROBLEM_KINDS), 0)
    for item in items:
        diagnosis = diagnose_item(item, loader, validator)
        if diagnosis is None:
            good.append(item)
            continue
        kinds, message = diagnosis
        for kind in kinds:
            counts[kind] += 1
        logger.warning("skipping %s", message)
    return good, counts


def _source(data: Mapping[Hashable, Any], value: Any) -> str | None:
    """Where ``value`` came from: its MetaTensor file name, else the item's ``source`` entry."""
    if isinstance(value, MetaTensor) and value.meta.get("filename_or_obj"):
        return str(value.meta["filename_or_obj"])
    source = data.get(SOURCE_KEY)
    return None if source is None else str(source)


def _input_error_in(error: BaseException | None) -> InputError | None:
    """The InputError behind ``error``: MONAI's ``Compose`` re-raises transform errors as RuntimeError."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, InputError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _label_problem(label: Any, num_classes: int) -> str | None:
    try:
        values = np.asarray(convert_to_numpy(label), dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return f"label {label!r} is not a number"
    if values.size == 0:
        return "label is empty"
    valid = np.isfinite(values) & (values == np.round(values)) & (values >= 0) & (values < num_classes)
    if not valid.all():
        return f"label {values[~valid][0]:g} is not a class index in [0, {num_classes})"
    return None
