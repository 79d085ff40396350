"""Random augmentation of whole 2D batches in the training process, drawn as MONAI's per-item transforms draw.

Why: MONAI's ``RandAffined``, ``RandFlipd``, ``RandScaleIntensityd`` and ``RandShiftIntensityd`` draw and
resample one item at a time, in DataLoader workers; where a few cores also run the training step, the workers
and the per-item collation slow it down, and a ``CacheDataset`` can cache nothing after the first of them.
The transforms here take the collated batch dict of ``(B, C, H, W)`` tensors once it is on the device (see
:class:`monai_xai.engines.PrepareBatchWithMasks`), draw every sample's parameters at once from a
``torch.Generator``, and apply them with vectorised ops, so the per-item pipeline before them stays
deterministic and is cached whole.

Each draws per sample what its MONAI counterpart draws per item, with the same arguments: ``prob`` per sample,
angles from ``rotate_range``, ``1 + U`` scale factors from ``scale_range``, shifts in pixels from
``translate_range``, ``v * (1 + U(-factors, factors))``, ``v + U(-offsets, offsets)``. The affine resamples
on ``RandAffine``'s grid (pixel coordinates centred on the image, ``align_corners=False``, the matrix
``rotate @ translate @ scale``), one grid for all keys; a sample it leaves out is not resampled. Masks are
binarised after them by MONAI's ``AsDiscreted``, which is elementwise and takes the batch as it is. Volumes
(any batch but ``(B, C, H, W)``) keep the per-item path: a volume batch is an
:class:`~monai_xai.errors.InputError`.

Without a seed the draws come from torch's default generator, which ``monai.utils.set_determinism`` seeds;
``set_random_state`` (also called by ``Compose.set_random_state``) gives a transform a generator of its own.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable
from monai.utils import (
    MAX_SEED,
    GridSampleMode,
    GridSamplePadMode,
    convert_to_tensor,
    ensure_tuple,
    ensure_tuple_rep,
    look_up_option,
)

from monai_xai.errors import InputError

__all__ = [
    "RandAffineBatchd",
    "RandFlipBatchd",
    "RandScaleIntensityBatchd",
    "RandShiftIntensityBatchd",
    "RandomizableBatchTransform",
]

#: the spatial rank these transforms work in
_SPATIAL_DIMS = 2


def _symmetric_range(name: str, value: float | Sequence[float], owner: str) -> tuple[float, float]:
    """MONAI's reading of an intensity range: ``f`` is ``(-f, f)``, a pair is ``(min, max)``."""
    if isinstance(value, (int, float)):
        return min(-value, value), max(-value, value)
    value = tuple(value)
    if len(value) != 2:
        raise InputError(None, f"{owner}: '{name}' must be a number or a pair of numbers, got {value}")
    return min(value), max(value)


def _option(name: str, value: str, options: type, owner: str) -> str:
    """``value`` if it names one of ``options`` (a MONAI enum of ``grid_sample``'s choices)."""
    try:
        return look_up_option(value, options).value
    except ValueError:
        choices = ", ".join(repr(o.value) for o in options)
        raise InputError(None, f"{owner}: '{name}' {value!r} is not one of {choices}") from None


def _axis_ranges(name: str, value: Any, owner: str) -> list[tuple[float, float]]:
    """``RandAffine``'s reading of a per-axis range (``f``: ``(-f, f)``, a pair: ``(low, high)``) for the two
    spatial axes; an axis without an entry, or with ``None``, does not vary."""
    ranges = []
    for entry in ensure_tuple(value)[:_SPATIAL_DIMS]:
        if entry is None:
            ranges.append((0.0, 0.0))
        elif isinstance(entry, (int, float)):
            ranges.append((-float(entry), float(entry)))
        elif len(entry) == 2:
            ranges.append((float(entry[0]), float(entry[1])))
        else:
            raise InputError(None, f"{owner}: each entry of '{name}' must be a number or a pair, got {entry}")
    return ranges + [(0.0, 0.0)] * (_SPATIAL_DIMS - len(ranges))


class RandomizableBatchTransform(Randomizable, MapTransform):
    """Base of the batch transforms: the keys, the per-sample ``prob`` and the generator the draws come from.

    Args:
        keys: batch keys to transform.
        prob: probability that a sample is transformed, drawn per sample.
        allow_missing_keys: do not raise for keys missing from the batch.
    """

    def __init__(self, keys: KeysCollection, prob: float = 0.1, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if not 0.0 <= prob <= 1.0:
            raise InputError(None, f"{type(self).__name__}: 'prob' must lie in [0, 1], got {prob}")
        self.prob = prob
        self.generator: torch.Generator | None = None
        self._do_transform = torch.zeros(0, dtype=torch.bool)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandomizableBatchTransform:
        """Draw from a generator of its own seeded with ``seed`` (or with a seed drawn from ``state``, MONAI's
        other way to seed); with neither, from torch's default generator again.

        Args:
            seed: the generator's seed.
            state: a numpy random state to draw the seed from when ``seed`` is None.
        """
        if seed is None and state is not None:
            seed = int(state.randint(MAX_SEED))
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        return self

    def uniform(self, size: int, low: float, high: float) -> torch.Tensor:
        """``size`` draws from ``U(low, high)`` (float64, on the CPU, where the generator is).

        Args:
            size: number of draws.
            low: lower bound.
            high: upper bound.
        """
        return low + (high - low) * torch.rand(size, generator=self.generator, dtype=torch.float64)

    def randomize(self, data: int) -> None:
        """Draw which of the ``data`` samples of the batch are transformed.

        Args:
            data: the batch size.
        """
        self._do_transform = torch.rand(data, generator=self.generator) < self.prob

    def batch_size(self, data: Mapping[Hashable, Any], keys: Sequence[Hashable]) -> int:
        """The batch size shared by ``keys``, each of which must hold a ``(B, C, H, W)`` batch.

        Args:
            data: the batch dict.
            keys: the keys present in it that are transformed.
        """
        sizes = set()
        for key in keys:
            shape = tuple(data[key].shape)
            if len(shape) != _SPATIAL_DIMS + 2:
                raise InputError(
                    None,
                    f"{type(self).__name__}: '{key}' holds a batch of shape {shape}; batch augmentation "
                    "takes 2D batches (B, C, H, W) (volumes keep the per-item augmentation)",
                )
            sizes.add(shape[0])
        if len(sizes) > 1:
            raise InputError(None, f"{type(self).__name__}: the keys {list(keys)} hold different batch sizes")
        return sizes.pop()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        """Draw this batch's parameters and apply them to every key.

        Args:
            data: the batch dict, ``(B, C, H, W)`` tensors under ``keys``.
        """
        out = dict(data)
        keys = list(self.key_iterator(out))
        if not keys:
            return out
        self.randomize(self.batch_size(out, keys))
        for key in keys:
            out[key] = self.apply(convert_to_tensor(out[key], track_meta=False), key)
        return out

    @abstractmethod
    def apply(self, batch: torch.Tensor, key: Hashable) -> torch.Tensor:
        """This draw applied to one key's batch (each transform defines it).

        Args:
            batch: a ``(B, C, H, W)`` tensor.
            key: its key (for per-key options such as the affine's ``mode``).
        """


def _per_sample(values: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """``(B,)`` values shaped to broadcast over a ``(B, C, H, W)`` batch, on its device and dtype."""
    return values.to(device=batch.device, dtype=batch.dtype).view(-1, 1, 1, 1)


class RandAffineBatchd(RandomizableBatchTransform):
    """``RandAffined`` for batches: per sample a rotation, scaling and shift about the image centre, the
    same for every key, each key resampled with its own ``mode`` (bilinear images, nearest masks).

    The sampling grid is ``RandAffine``'s (its ``Resample`` normalises pixel coordinates centred on the image
    by ``2 / size``, ``align_corners=False``), built once per batch and shared by the keys: MONAI's batched
    ``AffineTransform`` layer would build one per key.

    Args:
        keys: batch keys to transform, all of one spatial size.
        prob: probability that a sample is transformed.
        rotate_range: the angle's range in radians, as ``RandAffine``'s (only the first entry counts in 2D).
        scale_range: per axis, the range ``U`` of the scale factor ``1 + U``, as ``RandAffine``'s.
        translate_range: per axis, the shift's range in pixels, as ``RandAffine``'s.
        mode: ``grid_sample`` interpolation (``GridSampleMode``), one for all keys or one per key.
        padding_mode: ``grid_sample`` padding outside the image (``GridSamplePadMode``).
        allow_missing_keys: do not raise for keys missing from the batch.
    """

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        rotate_range: Any = None,
        scale_range: Any = None,
        translate_range: Any = None,
        mode: str | Sequence[str] = "bilinear",
        padding_mode: str = "zeros",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, allow_missing_keys)
        name = type(self).__name__
        rotation = ensure_tuple(rotate_range)[0]  # the one angle of 2D: a number or a (low, high) pair
        self.rotate_range = _axis_ranges("rotate_range", (rotation,), name)[0]
        self.scale_range = _axis_ranges("scale_range", scale_range, name)
        self.translate_range = _axis_ranges("translate_range", translate_range, name)
        modes = ensure_tuple_rep(mode, len(self.keys))
        self.mode = {key: _option("mode", m, GridSampleMode, name) for key, m in zip(self.keys, modes)}
        self.padding_mode = _option("padding_mode", padding_mode, GridSamplePadMode, name)
        self.rotate_params = self.scale_params = self.translate_params = torch.zeros(0, dtype=torch.float64)
        self.theta = torch.zeros(0, _SPATIAL_DIMS, _SPATIAL_DIMS + 1, dtype=torch.float64)
        self._grids: dict[tuple, torch.Tensor] = {}

    def randomize(self, data: int) -> None:
        """Draw which samples are transformed and, for those (in batch order), the angles
        (``rotate_params``, ``(n,)``), scale factors and shifts (``scale_params``, ``translate_params``,
        ``(n, 2)``) and the ``(n, 2, 3)`` matrices ``rotate @ translate @ scale`` (``theta``, on pixel
        coordinates centred on the image).

        Args:
            data: the batch size.
        """
        super().randomize(data)
        count = int(self._do_transform.sum())
        self.rotate_params = self.uniform(count, *self.rotate_range)
        self.scale_params = torch.stack([1.0 + self.uniform(count, *r) for r in self.scale_range], dim=-1)
        self.translate_params = torch.stack([self.uniform(count, *r) for r in self.translate_range], dim=-1)
        cos, sin = torch.cos(self.rotate_params), torch.sin(self.rotate_params)
        rotate = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], dim=-2)
        linear = rotate * self.scale_params[:, None, :]
        self.theta = torch.cat([linear, rotate @ self.translate_params[..., None]], dim=-1)
        self._grids = {}

    def grid(self, batch: torch.Tensor) -> torch.Tensor:
        """The ``grid_sample`` grid of the drawn affines for batches of ``batch``'s size, device and dtype.

        Args:
            batch: a ``(B, C, H, W)`` tensor.
        """
        size = tuple(batch.shape[2:])
        signature = (size, batch.device, batch.dtype)
        if signature not in self._grids:
            # normalised = centred pixel coordinates * 2 / size; grid_sample orders them (x, y) = (axis 1, 0)
            to_norm = torch.tensor([2.0 / s for s in size], dtype=torch.float64)
            linear = self.theta[..., :_SPATIAL_DIMS] * to_norm[:, None] / to_norm[None, :]
            offset = self.theta[..., _SPATIAL_DIMS] * to_norm
            theta = torch.cat([linear.flip(-1, -2), offset.flip(-1)[..., None]], dim=-1)
            shape = [len(theta), 1, *size]
            grid = F.affine_grid(theta.to(device=batch.device, dtype=batch.dtype), shape, align_corners=False)
            self._grids[signature] = grid
        return self._grids[signature]

    def apply(self, batch: torch.Tensor, key: Hashable) -> torch.Tensor:
        """Resample the transformed samples of one key's batch with the key's mode.

        Args:
            batch: a ``(B, C, H, W)`` tensor.
            key: its key.
        """
        selected = self._do_transform.nonzero().view(-1).to(batch.device)
        if selected.numel() == 0:
            return batch
        warped = F.grid_sample(
            batch.index_select(0, selected),
            self.grid(batch),
            mode=self.mode[key],
            padding_mode=self.padding_mode,
            align_corners=False,
        )
        return batch.index_copy(0, selected, warped)


class RandFlipBatchd(RandomizableBatchTransform):
    """``RandFlipd`` for batches: per sample, a flip along ``spatial_axis`` of every key.

    Args:
        keys: batch keys to transform.
        prob: probability that a sample is flipped.
        spatial_axis: spatial axes to flip (0: rows, 1: columns); None flips both, as ``RandFlip``.
        allow_missing_keys: do not raise for keys missing from the batch.
    """

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        spatial_axis: int | Sequence[int] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, allow_missing_keys)
        axes = range(_SPATIAL_DIMS) if spatial_axis is None else ensure_tuple(spatial_axis)
        if any(not -_SPATIAL_DIMS <= int(a) < _SPATIAL_DIMS for a in axes):
            raise InputError(
                None, f"{type(self).__name__}: 'spatial_axis' {spatial_axis} is not an axis of a 2D image"
            )
        self.dims = tuple(int(a) % _SPATIAL_DIMS + 2 for a in axes)

    def apply(self, batch: torch.Tensor, key: Hashable) -> torch.Tensor:
        """Flip the drawn samples of one key's batch.

        Args:
            batch: a ``(B, C, H, W)`` tensor.
            key: its key (unused: every key flips alike).
        """
        selected = self._do_transform.nonzero().view(-1).to(batch.device)
        return batch.index_copy(0, selected, batch.index_select(0, selected).flip(self.dims))


class RandScaleIntensityBatchd(RandomizableBatchTransform):
    """``RandScaleIntensityd`` for batches: per sample ``v * (1 + factor)``, ``factor`` from ``factors``.

    Args:
        keys: batch keys to transform.
        factors: the factor's range: ``f`` is ``(-f, f)``, a pair is ``(min, max)``.
        prob: probability that a sample is scaled.
        allow_missing_keys: do not raise for keys missing from the batch.
    """

    def __init__(
        self,
        keys: KeysCollection,
        factors: float | Sequence[float],
        prob: float = 0.1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, allow_missing_keys)
        self.factors = _symmetric_range("factors", factors, type(self).__name__)
        self.factor = torch.zeros(0, dtype=torch.float64)

    def randomize(self, data: int) -> None:
        """Draw which samples are scaled and their factors (0 for the others).

        Args:
            data: the batch size.
        """
        super().randomize(data)
        self.factor = torch.where(self._do_transform, self.uniform(data, *self.factors), 0.0)

    def apply(self, batch: torch.Tensor, key: Hashable) -> torch.Tensor:
        """Scale one key's batch.

        Args:
            batch: a ``(B, C, H, W)`` tensor.
            key: its key (unused: every key scales alike).
        """
        return batch * (1.0 + _per_sample(self.factor, batch))


class RandShiftIntensityBatchd(RandomizableBatchTransform):
    """``RandShiftIntensityd`` for batches: per sample ``v + offset``, ``offset`` from ``offsets``.

    Args:
        keys: batch keys to transform.
        offsets: the offset's range: ``f`` is ``(-f, f)``, a pair is ``(min, max)``.
        prob: probability that a sample is shifted.
        allow_missing_keys: do not raise for keys missing from the batch.
    """

    def __init__(
        self,
        keys: KeysCollection,
        offsets: float | Sequence[float],
        prob: float = 0.1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, allow_missing_keys)
        self.offsets = _symmetric_range("offsets", offsets, type(self).__name__)
        self.offset = torch.zeros(0, dtype=torch.float64)

    def randomize(self, data: int) -> None:
        """Draw which samples are shifted and their offsets (0 for the others).

        Args:
            data: the batch size.
        """
        super().randomize(data)
        self.offset = torch.where(self._do_transform, self.uniform(data, *self.offsets), 0.0)

    def apply(self, batch: torch.Tensor, key: Hashable) -> torch.Tensor:
        """Shift one key's batch.

        Args:
            batch: a ``(B, C, H, W)`` tensor.
            key: its key (unused: every key shifts alike).
        """
        return batch + _per_sample(self.offset, batch)
