"""Learning-rate range test (Smith 2017) over a momentum x weight-decay grid, for cyclical-LR training.

Each grid cell runs MONAI's :class:`~monai.optimizers.LearningRateFinder` from the model's initial weights:
SGD with that momentum and weight decay for ``num_iter`` steps while the learning rate grows exponentially
from ``start_lr`` to ``end_lr``, the loss smoothed exponentially from the first one, and the test stopped when
the smoothed loss passes ``diverge_factor`` times its minimum. MONAI's finder suggests only the learning rate
of the steepest descent of one curve, so this module adds the grid, Smith's cyclical range (``max_lr`` half
the learning rate of the loss minimum, ``base_lr`` a quarter of that) and the results file and figure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from monai.networks.utils import train_mode
from monai.optimizers import LearningRateFinder
from torch import nn
from torch.utils.data import DataLoader

__all__ = ["LRRangeCurve", "LRRangeResult", "lr_range_test", "suggest_cyclical_lr"]


@dataclass
class LRRangeCurve:
    """One grid cell's curve: learning rates and smoothed losses, and its suggested cyclical range."""

    momentum: float
    weight_decay: float
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    base_lr: float = float("nan")
    max_lr: float = float("nan")
    min_loss: float = float("nan")


@dataclass
class LRRangeResult:
    """All curves and the suggestion of the cell with the lowest smoothed loss."""

    curves: list[LRRangeCurve]
    best: LRRangeCurve

    def to_dict(self) -> dict:
        return {"best": asdict(self.best), "curves": [asdict(c) for c in self.curves]}


def suggest_cyclical_lr(lrs: Sequence[float], losses: Sequence[float]) -> tuple[float, float]:
    """``(base_lr, max_lr)`` of one curve: max_lr half the LR of the lowest loss, base_lr = max_lr / 4.

    NaN losses are skipped: MONAI's finder does not stop on them.
    """
    if not lrs:
        raise ValueError("empty learning-rate curve: the range test ran no step")
    max_lr = lrs[int(np.nanargmin(losses))] / 2.0
    return max_lr / 4.0, max_lr


def _labels(batch: dict) -> torch.Tensor:
    """Class indices (B,) as cross-entropy wants them; loaders may give (B, 1) or float labels."""
    return torch.as_tensor(batch["label"]).long().view(-1)


def _range_curve(
    model: nn.Module,
    loss_fn: Callable,
    loader: DataLoader,
    device: torch.device,
    momentum: float,
    weight_decay: float,
    start_lr: float,
    end_lr: float,
    num_iter: int,
    smoothing: float,
    diverge_factor: float,
) -> LRRangeCurve:
    """One cell; MONAI's finder puts the model's and the optimizer's initial states back afterwards."""
    optimizer = torch.optim.SGD(model.parameters(), lr=start_lr, momentum=momentum, weight_decay=weight_decay)
    finder = LearningRateFinder(model, optimizer, loss_fn, device=device, verbose=False)
    finder.range_test(
        loader, label_extractor=_labels, end_lr=end_lr, num_iter=num_iter, smooth_f=smoothing,
        diverge_th=diverge_factor,
    )  # fmt: skip
    lrs, losses = finder.history["lr"], finder.history["loss"]
    base_lr, max_lr = suggest_cyclical_lr(lrs, losses)
    return LRRangeCurve(momentum, weight_decay, lrs, losses, base_lr, max_lr, float(np.nanmin(losses)))


def lr_range_test(
    model: nn.Module,
    data_loader: DataLoader,
    loss_fn: Callable | None = None,
    momenta: Sequence[float] = (0.9, 0.95),
    weight_decays: Sequence[float] = (1e-4, 1e-3),
    start_lr: float = 1e-5,
    end_lr: float = 1.0,
    num_iter: int = 100,
    smoothing: float = 0.05,
    diverge_factor: float = 4.0,
    device: str | torch.device = "cpu",
    output_dir: str | os.PathLike | None = None,
) -> LRRangeResult:
    """Run the range test for every (momentum, weight decay) pair from ``model``'s current weights.

    ``data_loader`` is a torch ``DataLoader`` (MONAI's finder requires one) of dicts with ``image`` and
    ``label``; ``loss_fn(logits, labels)`` defaults to cross-entropy. With ``output_dir``, writes
    ``lr_range_test.json`` and ``lr_range_test.png`` (loss vs learning rate). The model's weights, device and
    train/eval mode are left as they were.
    """
    from tqdm.auto import tqdm

    loss_fn = loss_fn or nn.CrossEntropyLoss()
    grid = [(m, wd) for m in momenta for wd in weight_decays]
    with train_mode(model):
        curves = [
            _range_curve(
                model, loss_fn, data_loader, torch.device(device), momentum, weight_decay,
                start_lr, end_lr, num_iter, smoothing, diverge_factor,
            )
            for momentum, weight_decay in tqdm(grid, desc="LR range test", disable=None)
        ]  # fmt: skip
    model.zero_grad(set_to_none=True)  # the last test step's gradients are not the caller's
    result = LRRangeResult(curves, min(curves, key=lambda c: c.min_loss))
    if output_dir is not None:
        _write(result, Path(output_dir))
    return result


def _write(result: LRRangeResult, output_dir: Path) -> None:
    from monai_xai.utils import atomic_write_json, pyplot
    from monai_xai.visualize.figures import save_figure

    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output_dir / "lr_range_test.json", result.to_dict(), indent=2)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for curve in result.curves:
        ax.plot(curve.lrs, curve.losses, label=f"momentum {curve.momentum:g}, wd {curve.weight_decay:g}")
    ax.axvspan(result.best.base_lr, result.best.max_lr, color="gray", alpha=0.2, label="suggested range")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, output_dir / "lr_range_test.png")
