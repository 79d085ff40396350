"""The LR range test on MONAI's LearningRateFinder: curve, suggestion and files, equal to a plain loop."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from monai_xai.lr_finder import lr_range_test, suggest_cyclical_lr


def _tiny(seed: int = 0) -> tuple[nn.Module, list[dict[str, torch.Tensor]]]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    batches = [{"image": torch.randn(8, 1, 4, 4), "label": torch.randint(0, 2, (8,))} for _ in range(3)]
    return model, batches


def _plain_range_test(
    model: nn.Module, batches: list, momentum: float, start_lr: float, end_lr: float, num_iter: int
) -> tuple[list[float], list[float]]:
    """Reference: exponential LR, loss smoothed from the first (factor 0.05), stop above 4x its minimum."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=start_lr, momentum=momentum)
    lrs: list[float] = []
    losses: list[float] = []
    for step in range(num_iter):
        lr = start_lr * (end_lr / start_lr) ** (step / (num_iter - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = batches[step % len(batches)]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(batch["image"]), batch["label"])
        loss.backward()
        optimizer.step()
        smoothed = loss.item() if step == 0 else 0.05 * loss.item() + 0.95 * losses[-1]
        lrs.append(lr)
        losses.append(smoothed)
        if smoothed > 4.0 * min(losses):
            break
    return lrs, losses


def test_curve_and_suggestion_equal_a_plain_range_test() -> None:
    model, batches = _tiny()
    loader = DataLoader(batches, batch_size=None)
    result = lr_range_test(
        model, loader, momenta=(0.9,), weight_decays=(0.0,), num_iter=40, start_lr=1e-3, end_lr=1e4
    )
    lrs, losses = _plain_range_test(model, batches, momentum=0.9, start_lr=1e-3, end_lr=1e4, num_iter=40)
    assert len(losses) < 40  # the run diverged, so the stop rule is compared too
    assert result.best.lrs == pytest.approx(lrs, rel=1e-12)
    assert result.best.losses == pytest.approx(losses, rel=1e-6)
    assert (result.best.base_lr, result.best.max_lr) == pytest.approx(
        suggest_cyclical_lr(lrs, losses), rel=1e-12
    )


def test_grid_suggests_range_writes_curves_and_restores_the_model(tmp_path) -> None:
    model, batches = _tiny()
    model.eval()
    before = copy.deepcopy(model.state_dict())
    result = lr_range_test(
        model, DataLoader(batches, batch_size=None), momenta=(0.0, 0.9), weight_decays=(0.0,), num_iter=12,
        start_lr=1e-3, end_lr=10, output_dir=tmp_path,
    )  # fmt: skip
    assert len(result.curves) == 2 and result.best in result.curves
    assert 0 < result.best.base_lr < result.best.max_lr
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training and all(p.grad is None for p in model.parameters())
    saved = json.loads((tmp_path / "lr_range_test.json").read_text())
    assert saved["best"]["max_lr"] == result.best.max_lr and (tmp_path / "lr_range_test.png").is_file()
    assert suggest_cyclical_lr([0.1, 1.0, 10.0], [2.0, 1.0, 3.0]) == (0.125, 0.5)
    assert suggest_cyclical_lr([0.1, 1.0, 10.0], [2.0, 1.0, float("nan")]) == (0.125, 0.5)
