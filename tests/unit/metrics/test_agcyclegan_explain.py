"""Counterfactual metrics and controls, panels, and the explaining evaluator with its report."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ignite.engine import Engine
from torch import nn

from monai_xai.engines import CounterfactualEvaluator
from monai_xai.handlers import CounterfactualReportHandler
from monai_xai.metrics import (
    before_after_confusion,
    extreme_examples,
    flip_rate,
    map_correlation,
    map_mean,
    masked_translation,
    mean_abs_difference,
    shuffled_maps,
    target_probability_change,
    topk_iou,
    uniform_maps,
)
from monai_xai.networks.nets import AGCycleGAN, ResNetClassifier
from monai_xai.visualize import (
    counterfactual_examples_figure,
    counterfactual_figure,
    save_counterfactual_nifti,
)


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


def test_masked_translation_and_uniform_control() -> None:
    images, generated = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    attention = torch.zeros(2, 1, 4, 4)
    attention[0, 0, :2] = 1.0  # first image: top half from G; second: nothing
    translated = masked_translation(images, generated, attention)
    torch.testing.assert_close(translated[0, 0, :2], generated[0, 0, :2])
    torch.testing.assert_close(translated[0, 0, 2:], images[0, 0, 2:])
    torch.testing.assert_close(translated[1], images[1])
    torch.testing.assert_close(map_mean(attention), torch.tensor([0.5, 0.0]))
    uniform = uniform_maps(attention)
    assert uniform.shape == attention.shape and uniform[0].unique().tolist() == [0.5]
    torch.testing.assert_close(map_mean(uniform), map_mean(attention))
    difference = mean_abs_difference(translated, images)
    torch.testing.assert_close(difference[0], (generated - images)[0, 0, :2].abs().sum() / 16)
    assert difference[1].item() == 0.0


def test_shuffled_maps_give_every_image_another_map() -> None:
    maps = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 3, 3)  # map i is filled with i
    shuffled = shuffled_maps(maps, generator=torch.Generator().manual_seed(0))
    taken = shuffled[:, 0, 0, 0].long()
    assert sorted(taken.tolist()) == list(range(5)) and (taken != torch.arange(5)).all()  # a derangement
    again = shuffled_maps(maps, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, shuffled)  # seeded
    carry = torch.full((2, 1, 6, 6), 7.0)  # an earlier batch of another size: resized
    single = shuffled_maps(maps[:1], carry, torch.Generator().manual_seed(1))
    assert single.shape == (1, 1, 3, 3) and single.unique().tolist() == [7.0]
    with pytest.raises(ValueError, match="at least two maps"):
        shuffled_maps(maps[:1])


def test_probability_change_and_extreme_examples() -> None:
    before = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    after = torch.tensor([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    change = target_probability_change(before, after, torch.tensor([1, 0, 1]))
    torch.testing.assert_close(change, torch.tensor([0.6, 0.7, 0.1]))
    picked = extreme_examples(torch.tensor([0.6, 0.7, 0.1, -0.2, 0.9]), [1, 1, 0, 0, 1], n=2)
    assert picked["best"].tolist() == [4, 1] and picked["worst"].tolist() == [3, 2]
    assert extreme_examples([0.5], [True], n=3)["worst"].tolist() == []


def test_panel_figure_and_nifti(tmp_path) -> None:
    import nibabel as nib

    vol = [torch.rand(1, 6, 6, 6) for _ in range(2)]
    fig = counterfactual_figure(vol, vol, vol, vol, cams=vol, titles=["a", "b"])
    assert len(fig.axes) == 12
    assert len(counterfactual_examples_figure(vol, vol, vol, titles=["a", "b"]).axes) == 8
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
    report = CounterfactualReportHandler(tmp_path, ["neg", "pos"], n_panels=3, n_overview=2)
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
    for key in (
        "flip_rate",
        "control_flip_rate",
        "uniform_flip_rate",
        "mean_attention",
        "mean_abs_difference",
    ):
        assert {f"{key}_from_0", f"{key}_from_1"} <= set(metrics)
    assert {"correlation", "top10pct_iou"} == set(metrics["attention_vs_gradcampp_from_1"])
    assert set(json.loads((tmp_path / "examples.json").read_text())) == {
        f"{kind}_from_{cls}" for kind in ("best", "worst") for cls in (0, 1)
    }
    assert len(list((tmp_path / "panels").glob("*.png"))) == 3
    assert (tmp_path / "figures" / "overview.png").is_file()
    assert len(list((tmp_path / "panels").glob("nifti/*.nii.gz"))) == 15  # 3 panels x 5 volumes
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    assert [p["source"] for p in predictions[:2]] == ["img0_0.png", "img0_1.png"]


class _BrightestPixel(nn.Module):
    """Class 1 when the brightest pixel exceeds 0.75: only a change at that pixel's place flips it."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        peak = images.flatten(1).amax(dim=1)
        return torch.stack([0.75 - peak, peak - 0.75], dim=1) * 20


def _lesion_outputs(classifier: nn.Module, sizes=(1, 3, 2)):
    """Engine outputs of 4x4 images, each a lesion at its own pixel that A covers exactly: class 0 lesions
    (0.5, 0.45, 0.3) brighten by 0.4 (the last stays below 0.75: no flip), class 1 lesions (1.0, 0.95, 0.9)
    darken by 0.6. Another image's map or a uniform one leaves the lesion (almost) as it is."""
    items = [(0, 0.5), (1, 1.0), (0, 0.45), (1, 0.95), (0, 0.3), (1, 0.9)]
    start = 0
    for size in sizes:
        batch = items[start : start + size]
        images, attention = torch.zeros(size, 1, 4, 4), torch.zeros(size, 1, 4, 4)
        for i, (_, value) in enumerate(batch):
            images.view(size, -1)[i, 3 * (start + i)] = value
            attention.view(size, -1)[i, 3 * (start + i)] = 1.0
        labels = torch.tensor([label for label, _ in batch])
        shift = torch.where(labels == 0, 0.4, -0.6).view(-1, 1, 1, 1)
        generated = (images + shift).clamp(0, 1)
        fake = masked_translation(images, generated, attention)
        yield {
            "image": images, "attention": attention, "generated": generated, "fake": fake,
            "pred": classifier(images), "pred_after": classifier(fake), "label": labels,
            "source_class": labels, "target_class": 1 - labels, "cam": attention.clone(),
            "mask": attention.clone(),
            "name": [f"case{start + i}.png" for i in range(size)],
        }  # fmt: skip
        start += size


def _run_report(report: CounterfactualReportHandler, outputs) -> dict:
    engine = Engine(lambda engine, output: output)
    engine.network = _BrightestPixel()
    report.attach(engine)
    engine.run(list(outputs), max_epochs=1)
    return report.compute()


def test_report_flip_rates_controls_and_examples_from_tiny_outputs(tmp_path) -> None:
    report = CounterfactualReportHandler(tmp_path, ["neg", "pos"], n_panels=0, n_examples=2)
    metrics = _run_report(report, _lesion_outputs(_BrightestPixel()))
    assert metrics["flip_rate_from_0"] == pytest.approx(2 / 3) and metrics["flip_rate_from_1"] == 1.0
    assert metrics["flip_rate_from_neg"] == metrics["flip_rate_from_0"]  # the names of earlier reports
    assert metrics["n_images_from_0"] == metrics["n_images_from_1"] == 3
    for key in ("control_flip_rate", "uniform_flip_rate"):  # only the attention's own place flips
        assert metrics[key] == metrics[f"{key}_from_0"] == metrics[f"{key}_from_1"] == 0.0
    assert metrics["mean_attention"] == metrics["mean_attention_from_1"] == pytest.approx(1 / 16)
    assert metrics["mean_abs_difference_from_0"] == pytest.approx(0.4 / 16)
    assert metrics["mean_abs_difference_from_1"] == pytest.approx(0.6 / 16)
    assert metrics["mean_abs_difference"] == pytest.approx(0.5 / 16)
    for suffix in ("", "_from_0", "_from_1"):
        assert metrics[f"attention_vs_gradcampp{suffix}"] == {
            "correlation": pytest.approx(1.0),
            "top10pct_iou": 1.0,
        }
    assert metrics["mask_agreement"]["attention"]["pointing_game"] == 1.0
    assert metrics["classifier"]["accuracy"] == 1.0
    examples = json.loads((tmp_path / "examples.json").read_text())
    assert [e["name"] for e in examples["best_from_0"]["examples"]] == ["case0.png", "case2.png"]
    assert [e["name"] for e in examples["worst_from_0"]["examples"]] == ["case4.png"]
    assert [e["name"] for e in examples["best_from_1"]["examples"]] == ["case1.png", "case3.png"]
    assert examples["worst_from_1"] == {"panel": None, "examples": []}  # every 1 -> 0 translation flips
    assert sorted(p.name for p in tmp_path.glob("panels_*.png")) == [
        "panels_best_from_0.png", "panels_best_from_1.png", "panels_worst_from_0.png"
    ]  # fmt: skip
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    assert [p["flipped_control"] for p in predictions] == [False] * 6  # the held first image included
    assert [p["flipped"] for p in predictions] == [True, True, True, True, False, True]
    assert json.loads((tmp_path / "metrics.json").read_text())["control_flip_rate"] == 0.0


class _AlwaysClass0(nn.Module):
    """A judge that calls every image class 0."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tensor([1.0, -1.0]).expand(len(images), 2)


def test_report_judges_the_same_translations_with_a_second_classifier(tmp_path) -> None:
    """Judge flip rates are defined as the main ones (share of each source class's translations judged as
    the target class): a judge that always says 0 flips every 1 -> 0 translation and no 0 -> 1 one; among
    the images it gets right (class 0) nothing flips. The classifier's own figures stay as they were."""
    plain = _run_report(
        CounterfactualReportHandler(tmp_path / "plain", ["neg", "pos"], n_panels=0),
        _lesion_outputs(_BrightestPixel()),
    )
    assert not any(key.startswith("judge_") for key in plain)
    report = CounterfactualReportHandler(
        tmp_path / "judged", ["neg", "pos"], n_panels=0, judge=_AlwaysClass0()
    )
    metrics = _run_report(report, _lesion_outputs(_BrightestPixel()))
    assert metrics["judge_flip_rate_from_0"] == 0.0 and metrics["judge_flip_rate_from_1"] == 1.0
    assert metrics["judge_flip_rate"] == 0.5 and metrics["judge_flip_rate_correct_only"] == 0.0
    assert metrics["judge_classifier"]["accuracy"] == 0.5
    assert {k: v for k, v in metrics.items() if not k.startswith("judge")} == plain
    written = json.loads((tmp_path / "judged" / "metrics.json").read_text())
    assert written["judge_flip_rate_from_1"] == 1.0


def test_report_of_a_single_image_has_no_shuffled_control(tmp_path) -> None:
    report = CounterfactualReportHandler(tmp_path, ["neg", "pos"], n_panels=0)
    metrics = _run_report(report, _lesion_outputs(_BrightestPixel(), sizes=(1,)))
    assert math.isnan(metrics["control_flip_rate"]) and metrics["uniform_flip_rate"] == 0.0
    assert json.loads((tmp_path / "predictions.json").read_text())[0]["flipped_control"] is None
