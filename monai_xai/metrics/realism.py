"""How real translated images look to a network that did not make them: the kernel inception distance (KID,
Bińkowski et al. 2018, "Demystifying MMD GANs") in the feature space of a classifier's penultimate layer.

KID is the unbiased estimate of the squared maximum mean discrepancy (MMD²) between two sets of feature
vectors under the cubic polynomial kernel ``k(x, y) = (x·y / d + 1)^3`` (``d`` the feature width). Zero in
expectation when both sets come from one distribution (the unbiased estimate can then fall slightly below
zero), larger the further apart they are. Here the features come from the AG-CycleGAN evaluation's judge, a
classifier of another architecture that no GAN trained against, instead of an Inception network trained on
natural images: translations of class-0 images are compared with real class-1 images, and vice versa.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "capture_penultimate",
    "kernel_inception_distance",
    "last_linear",
    "mmd2_unbiased",
    "polynomial_kernel",
]


def polynomial_kernel(
    x: Any, y: Any, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """``(gamma * x @ y.T + coef0) ** degree`` of (n, d) and (m, d) arrays; ``gamma`` by default ``1 / d``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be (n, d) and (m, d), got {x.shape} and {y.shape}")
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * x @ y.T + coef0) ** degree


def mmd2_unbiased(x: Any, y: Any, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> float:
    """Unbiased MMD² of two feature sets under :func:`polynomial_kernel` (with the defaults: KID).

    ``mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j)``; NaN when a set has fewer
    than two vectors.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        return math.nan
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_inception_distance(
    real: Any,
    fake: Any,
    n_subsets: int = 100,
    subset_size: int | None = None,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """KID of two feature sets (``real``, ``fake``: (n, d) and (m, d)) with a subset interval.

    ``mean`` is the unbiased MMD² (:func:`mmd2_unbiased`) of the full sets. ``ci95`` (``ci90`` at level 0.9)
    is the percentile interval of the same estimate on ``n_subsets`` pairs of random subsets drawn without
    replacement (seeded), ``subset_size`` from each set (default: half of the smaller set, at most 1000,
    as in the KID paper's subsets): an unbiased estimate has the same expectation on a subset, and its
    spread on half the images is wider than that of the full-set estimate, so the interval is conservative.
    A subset of the whole set would repeat one value. NaN where a set has fewer than two vectors (four for
    the interval). Also ``n_real``, ``n_fake``, ``subset_size`` and ``n_subsets``.
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n_real, n_fake = len(real), len(fake)
    size = min(1000, min(n_real, n_fake) // 2) if subset_size is None else subset_size
    size = min(size, n_real, n_fake)
    low = high = math.nan
    if size >= 2 and n_subsets > 0:
        rng = np.random.default_rng(seed)

        def subset(n: int) -> np.ndarray:
            return rng.choice(n, size, replace=False)

        estimates = np.array(
            [mmd2_unbiased(real[subset(n_real)], fake[subset(n_fake)]) for _ in range(n_subsets)]
        )
        alpha = (1.0 - level) / 2.0
        low, high = (float(v) for v in np.quantile(estimates, [alpha, 1.0 - alpha]))
    return {
        "mean": mmd2_unbiased(real, fake),
        f"ci{level * 100:g}": [low, high],
        "n_real": n_real,
        "n_fake": n_fake,
        "subset_size": size if size >= 2 else 0,
        "n_subsets": n_subsets if size >= 2 else 0,
    }


def last_linear(network: nn.Module) -> nn.Linear | None:
    """The last :class:`torch.nn.Linear` among ``network``'s modules (a classifier's output layer: MONAI's
    DenseNet ``class_layers.out``, a ResNet's ``fc``), or None when it has none."""
    linear = None
    for module in network.modules():
        if isinstance(module, nn.Linear):
            linear = module
    return linear


@contextlib.contextmanager
def capture_penultimate(network: nn.Module) -> Iterator[list[torch.Tensor]]:
    """While open, every forward of ``network`` appends the input of its output layer (:func:`last_linear`),
    flattened to (B, features) float32 on the CPU, to the yielded list: the penultimate features.

    Raises:
        ValueError: when ``network`` has no linear output layer.
    """
    layer = last_linear(network)
    if layer is None:
        raise ValueError(f"{type(network).__name__} has no linear output layer to take features from")
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple) -> None:
        captured.append(args[0].detach().flatten(1).float().cpu())

    handle = layer.register_forward_pre_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
