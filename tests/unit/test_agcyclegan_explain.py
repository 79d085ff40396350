"""Counterfactual metrics, panels, and the explaining evaluator with its report."""

from __future__ import annotations

import json

import pytest
import torch

from monai_xai.engines import CounterfactualEvaluator
from monai_xai.handlers import CounterfactualReport
from monai_xai.metrics import before_after_confusion, flip_rate, map_correlation, topk_iou
from monai_xai.networks.nets import AGCycleGAN, ResNetClassifier
from monai_xai.visualize import counterfactual_figure, save_counterfactual_nifti


def test_flip_rate_and_before_after_confusion() -> None:
    assert flip_rate(torch.tensor([1, 0, 1, 1]), torch.tensor([1, 1, 0, 1])) == pytest.approx(0.5)
    labels = torch.tensor([0, 0, 1, 1])
    matrices = before_after_confusion(labels, torch.tensor([0, 1, 1, 1]), torch.tensor([1, 1, 0, 1]))
    assert matrices["before"].tolist() == [[1, 1], [0, 2]]
    # after translation the true class is the target: 0 -> 1 for the first two, 1 -> 0 for the others
    assert matrices["after"].tolist() == [[1, 1], [0, 2]]


def test_map_correlation_and_topk_iou() -> None:
    a = torch.rand(3, 1, 8, 8)
    assert torch.allclose(map_correlation(a, a), torch.ones(3), atol=1e-5)
    assert torch.allclose(map_correlation(a, 1 - a), -torch.ones(3), atol=1e-5)
    assert torch.isnan(map_correlation(torch.ones(1, 1, 4, 4), torch.rand(1, 1, 4, 4))).all()
    assert torch.allclose(topk_iou(a, a * 5 + 2, 0.25), torch.ones(3))
    left, right = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    left[..., :2] = 1 + torch.rand(1, 1, 4, 2)
    right[..., 2:] = 1 + torch.rand(1, 1, 4, 2)
    assert topk_iou(left, right, 0.5).item() == 0.0
    assert map_correlation(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 8, 8)).shape == (2,)  # resized


def test_panel_figure_and_nifti(tmp_path) -> None:
    import nibabel as nib

    vol = [torch.rand(1, 6, 6, 6) for _ in range(2)]
    fig = counterfactual_figure(vol, vol, vol, vol, cams=vol, titles=["a", "b"])
    assert len(fig.axes) == 12
    paths = save_counterfactual_nifti(tmp_path, "case", *(v for v in (vol[0],) * 4))
    assert [p.name for p in paths] == [
        f"case_{k}.nii.gz" for k in ("input", "attention", "masked", "fake", "difference")
    ]
    assert nib.load(paths[-1]).shape == (6, 6, 6) and float(nib.load(paths[-1]).get_fdata().max()) == 0.0


def _batches(n: int = 2, dims: int = 2):
    torch.manual_seed(0)
    for i in range(n):
        yield {
            "image": torch.rand(3, 1, *([16] * dims)),
            "label": torch.tensor([0, 1, i % 2]),
            "mask": (torch.rand(3, 1, *([16] * dims)) > 0.7).float(),
            "source": [f"img{i}_{j}.png" for j in range(3)],
        }


def test_evaluator_translates_away_from_the_label_and_reports(tmp_path, dims: int = 3) -> None:
    from monai_xai.visualize import CAMSaliency

    classifier = ResNetClassifier(spatial_dims=dims)
    gan = AGCycleGAN(classifier, spatial_dims=dims, decoder_widths=(4, 4, 8, 8, 8))
    report = CounterfactualReport(tmp_path, ["neg", "pos"], n_panels=3, n_overview=2)
    evaluator = CounterfactualEvaluator(
        device="cpu", val_data_loader=list(_batches(dims=dims)), network=classifier, gan=gan,
        saliency_fn=CAMSaliency(classifier, "gradcampp"), val_handlers=[report],
    )  # fmt: skip
    evaluator.run()
    out = evaluator.state.output
    assert out["source_class"].tolist() == out["label"].tolist()
    assert out["target_class"].tolist() == (1 - out["label"]).tolist()
    assert 0 <= float(out["fake"].min()) and float(out["fake"].max()) <= 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n_images"] == 6 and 0 <= metrics["flip_rate"] <= 1
    assert sum(map(sum, metrics["confusion_after"])) == 6
    assert {"correlation", "top10pct_iou"} == set(metrics["attention_vs_gradcampp"])
    assert {"attention", "gradcampp"} == set(metrics["mask_agreement"])
    assert len(list((tmp_path / "panels").glob("*.png"))) == 3
    assert (tmp_path / "figures" / "overview.png").is_file()
    assert len(list((tmp_path / "panels").glob("nifti/*.nii.gz"))) == 15  # 3 panels x 5 volumes
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    assert [p["source"] for p in predictions[:2]] == ["img0_0.png", "img0_1.png"]
