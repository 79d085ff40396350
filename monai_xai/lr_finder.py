"""Learning-rate range test (Smith 2017) over a momentum x weight-decay grid, for cyclical-LR training.

Each grid cell trains a fresh copy of the same initial model for ``num_iter`` SGD steps while the learning
rate grows exponentially from ``start_lr`` to ``end_lr``; the smoothed loss against the learning rate shows
where training starts to progress and where it diverges. The suggestion follows Smith: ``max_lr`` a little
below the loss minimum (half its learning rate), ``base_lr`` a quarter of that.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

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
    """``(base_lr, max_lr)`` of one curve: max_lr half the LR of the lowest loss, base_lr = max_lr / 4."""
    if not lrs:
        raise ValueError("empty learning-rate curve: the range test ran no step")
    best = min(range(len(losses)), key=lambda i: losses[i])
    max_lr = lrs[best] / 2.0
    return max_lr / 4.0, max_lr


def _batches(loader: Iterable) -> Iterable:
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError("the data loader of the learning-rate range test is empty")


def _range_curve(
    model: nn.Module,
    loss_fn: Callable,
    loader: Iterable,
    device: torch.device,
    momentum: float,
    weight_decay: float,
    start_lr: float,
    end_lr: float,
    num_iter: int,
    smoothing: float,
    diverge_factor: float,
) -> LRRangeCurve:
    curve = LRRangeCurve(momentum, weight_decay)
    optimizer = torch.optim.SGD(model.parameters(), lr=start_lr, momentum=momentum, weight_decay=weight_decay)
    gamma = (end_lr / start_lr) ** (1.0 / max(num_iter - 1, 1))
    model.train()
    average, best = 0.0, float("inf")
    for step, batch in zip(range(num_iter), _batches(loader)):
        lr = start_lr * gamma**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        images = torch.as_tensor(batch["image"]).to(device)
        labels = torch.as_tensor(batch["label"]).to(device).long().view(-1)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        average = smoothing * loss.item() + (1 - smoothing) * average
        smoothed = average / (1 - (1 - smoothing) ** (step + 1))  # bias-corrected running mean
        curve.lrs.append(lr)
        curve.losses.append(smoothed)
        best = min(best, smoothed)
        if not math.isfinite(smoothed) or smoothed > diverge_factor * best:
            break
    curve.base_lr, curve.max_lr = suggest_cyclical_lr(curve.lrs, curve.losses)
    curve.min_loss = min(curve.losses)
    return curve


def lr_range_test(
    model: nn.Module,
    data_loader: Iterable,
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

    Batches are dicts with ``image`` and ``label``; ``loss_fn(logits, labels)`` defaults to cross-entropy.
    With ``output_dir``, writes ``lr_range_test.json`` and ``lr_range_test.png`` (loss vs learning rate).
    The model's own weights are left untouched.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    initial = copy.deepcopy(model.state_dict())
    curves = []
    grid = [(m, wd) for m in momenta for wd in weight_decays]
    for momentum, weight_decay in tqdm(grid, desc="LR range test", disable=None):
        trial = copy.deepcopy(model).to(device)
        trial.load_state_dict(initial)
        curves.append(
            _range_curve(
                trial, loss_fn, data_loader, device, momentum, weight_decay,
                start_lr, end_lr, num_iter, smoothing, diverge_factor,
            )
        )  # fmt: skip
    result = LRRangeResult(curves, min(curves, key=lambda c: c.min_loss))
    if output_dir is not None:
        _write(result, Path(output_dir))
    return result


def _write(result: LRRangeResult, output_dir: Path) -> None:
    from monai_xai.visualize.figures import _plt, save_figure

    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / ".lr_range_test.json.tmp"
    tmp.write_text(json.dumps(result.to_dict(), indent=2))
    os.replace(tmp, output_dir / "lr_range_test.json")
    plt = _plt()
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
