"""The AG-CycleGAN evaluation's independent judge: KID in its features, flip-rate intervals and the paired
control decision, the judge's config (another architecture, its own judge_def) and the report's new keys."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from torch import nn

from monai_xai.handlers import CounterfactualReportHandler
from monai_xai.metrics import masked_translation
from monai_xai.metrics.counterfactual import control_gaps, controls_met, flip_interval
from monai_xai.metrics.realism import (
    capture_penultimate,
    kernel_inception_distance,
    last_linear,
    mmd2_unbiased,
    polynomial_kernel,
)

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "bundles" / "agcyclegan_explainer" / "configs"

# ----------------------------------------------------------------------------------------------- KID


def _mmd2_by_loops(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """The unbiased MMD² written out pair by pair, the closed form the vectorised one must equal."""
    d = x.shape[1]

    def k(a, b):
        return (float(a @ b) / d + coef0) ** degree

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_mmd2_of_the_cubic_polynomial_kernel() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(1.0, 1.0, size=(4, 3))
    assert polynomial_kernel(x, y).shape == (5, 4)
    assert polynomial_kernel(x[:1], y[:1])[0, 0] == pytest.approx((x[0] @ y[0] / 3 + 1) ** 3)
    assert mmd2_unbiased(x, y) == pytest.approx(_mmd2_by_loops(x, y), rel=1e-10)
    assert mmd2_unbiased(y, x) == pytest.approx(mmd2_unbiased(x, y))
    assert math.isnan(mmd2_unbiased(x[:1], y))  # no pair within a set of one
    with pytest.raises(ValueError, match=r"\(n, d\) and \(m, d\)"):
        polynomial_kernel(x, y[:, :2])


def test_kid_near_zero_for_one_distribution_and_grows_with_the_shift() -> None:
    """Identical sets: the closed form (2 / n) (mean k(x_i, x_j), i≠j - mean k(x_i, x_i)), just below 0 and
    shrinking as 1 / n; two samples of one Gaussian: about 0; shifted Gaussians: larger the larger the
    shift. With the linear kernel (degree 1, coef0 0, gamma 1) the population MMD² is the squared distance
    of the means, which the estimate recovers."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
    k = polynomial_kernel(a, a)
    off, diag = (k.sum() - np.trace(k)) / (400 * 399), np.trace(k) / 400
    same = mmd2_unbiased(a, a)
    assert same == pytest.approx(2 / 400 * (off - diag)) and -0.1 < same < 0
    assert mmd2_unbiased(a[:40], a[:40]) < 10 * same / 2  # ten times fewer vectors: about ten times as far
    assert abs(mmd2_unbiased(a, b)) < 0.02
    shifted = [mmd2_unbiased(a, rng.normal(shift, 1.0, size=(400, 4))) for shift in (0.5, 1.0, 2.0)]
    assert 0.5 < shifted[0] < shifted[1] < shifted[2]
    delta = np.array([1.0, -0.5, 0.0, 0.5])
    linear = mmd2_unbiased(a, b + delta, degree=1, gamma=1.0, coef0=0.0)
    assert linear == pytest.approx(float(delta @ delta), abs=0.15)


def test_kid_subset_interval_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(40, 3)), rng.normal(1.5, 1.0, size=(30, 3))
    kid = kernel_inception_distance(real, fake, n_subsets=50, seed=3)
    assert kid["mean"] == pytest.approx(mmd2_unbiased(real, fake))
    assert kid["subset_size"] == 15 and kid["n_subsets"] == 50 and (kid["n_real"], kid["n_fake"]) == (40, 30)
    low, high = kid["ci95"]
    assert 0 < low < kid["mean"] < high
    assert kernel_inception_distance(real, fake, n_subsets=50, seed=3) == kid
    tiny = kernel_inception_distance(real[:3], fake[:3])  # halves of one vector: no interval
    assert all(math.isnan(v) for v in tiny["ci95"]) and tiny["n_subsets"] == 0
    assert not math.isnan(tiny["mean"])


def test_penultimate_features_are_the_input_of_the_last_linear_layer() -> None:
    torch.manual_seed(0)
    network = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert last_linear(network) is network[3]
    images = torch.rand(5, 1, 2, 2)
    with capture_penultimate(network) as features:
        logits = network(images)
    assert torch.equal(features[0], network[2](network[1](network[0](images))).detach())
    assert torch.allclose(network[3](features[0]), logits)
    network(images)
    assert len(features) == 1  # the hook is gone once the context closes
    with pytest.raises(ValueError, match="no linear output layer"):
        with capture_penultimate(nn.Sequential(nn.Flatten())):
            pass


# ------------------------------------------------------------------------- flip intervals and controls


def test_flip_interval_leaves_undefined_images_out() -> None:
    interval = flip_interval([1, 1, 0, 1, float("nan")], n_boot=200)
    assert interval["mean"] == 0.75 and interval["n"] == 4
    assert 0.0 <= interval["ci95"][0] <= 0.75 <= interval["ci95"][1] <= 1.0
    empty = flip_interval([float("nan")])
    assert math.isnan(empty["mean"]) and empty["n"] == 0


def test_controls_met_needs_the_paired_interval_above_zero_not_a_lower_point_estimate() -> None:
    """Per direction 20 images: the translations flip 11, the shuffled control 10, on unrelated images. The
    point estimate is lower (the landed strict '<' called that met), but the paired interval of the
    difference spans zero: not met. A control that flips none of 20 flipped translations is met."""
    rng = np.random.default_rng(0)
    source = np.repeat([0, 1], 20)
    flipped = np.concatenate([rng.permutation([1] * 11 + [0] * 9) for _ in range(2)]).astype(float)
    shuffled = np.concatenate([rng.permutation([1] * 10 + [0] * 10) for _ in range(2)]).astype(float)
    uniform = np.zeros(40)
    gaps = control_gaps(flipped, {"control": shuffled, "uniform": uniform}, source, n_boot=500)
    assert set(gaps) == {"control_from_0", "control_from_1", "uniform_from_0", "uniform_from_1"}
    close = gaps["control_from_0"]
    assert close["mean"] == pytest.approx(0.05) and close["n"] == 20
    assert close["ci95"][0] < 0 < close["ci95"][1]
    assert not controls_met(gaps)
    assert gaps["uniform_from_1"]["mean"] == pytest.approx(0.55) and gaps["uniform_from_1"]["ci95"][0] > 0
    always = np.ones(40)
    assert controls_met(control_gaps(always, {"control": uniform, "uniform": uniform}, source, n_boot=200))
    # an undefined control (NaN) leaves the image out of that pair; a direction without pairs is not met
    shuffled[:5] = np.nan
    assert control_gaps(flipped, {"control": shuffled}, source, n_boot=50)["control_from_0"]["n"] == 15
    assert not controls_met(control_gaps(always, {"control": uniform}, np.zeros(40), n_boot=50))
    assert controls_met({}) is None


# ----------------------------------------------------------------------------------------- the config


def _parser(*configs: str, **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(c) for c in configs])
    parser.update({"device_name": "cpu", **overrides})
    return parser


@pytest.mark.parametrize(
    ("fragment", "channels", "conv"),
    [("pneumoniamnist", 1, nn.Conv2d), ("pneumoniamnist", 3, nn.Conv2d), ("adrenalmnist3d", 1, nn.Conv3d)],
)
def test_judge_config_builds_a_densenet_from_its_own_def(tmp_path, fragment, channels, conv) -> None:
    """train_judge.json after train_classifier.json: the network trained is judge_def, a DenseNet121 with
    the dataset's channels behind a resize to at least 32 px (DenseNet121's smallest input), not the
    classifier; its folder, run identity and MLflow parameters name its architecture."""
    from monai.networks.nets import DenseNet

    parser = _parser(
        CONFIGS / "train.json",
        REPO / "configs" / "datasets" / f"{fragment}.json",
        CONFIGS / "train_classifier.json",
        CONFIGS / "train_judge.json",
        bundle_root=str(tmp_path),
        in_channels=channels,
    )
    judge = parser.get_parsed_content("network_def")
    densenet = judge[-1]
    assert isinstance(densenet, DenseNet) and type(densenet).__name__ == "DenseNet121"
    stem = densenet.features.conv0
    assert isinstance(stem, conv) and stem.in_channels == parser["in_channels"] == channels
    assert densenet.class_layers.out.out_features == parser["num_classes"]
    assert not any(isinstance(m, type(parser.get_parsed_content("classifier_def"))) for m in judge.modules())
    size = [32] * parser["spatial_dims"]
    assert judge[0].size == size and parser.get_parsed_content("judge_input_size") == size
    assert parser.get_parsed_content("classifier_dir") == str(
        tmp_path / "runs" / fragment / "judge_densenet121"
    )
    assert parser.get_parsed_content("run_identity#classifier") == {
        "architecture": "DenseNet121",
        "input_size": size,
    }
    assert parser.get_parsed_content("train#handlers#3#experiment_param#network") == "DenseNet121"
    assert parser["train#handlers#3#experiment_param#act"] is None
    assert parser["train#handlers#3#_target_"] == "monai_xai.handlers.ResumableMLFlowHandler"
    if conv is nn.Conv2d:
        with torch.no_grad():
            logits = judge.eval()(torch.rand(2, channels, *parser["spatial_size"]))
        assert logits.shape == (2, parser["num_classes"])


def test_evaluation_loads_the_judge_checkpoint_into_judge_def(tmp_path) -> None:
    """evaluate.json's judge: off without --judge_checkpoint, else train_judge.json's network with its
    weights; the seed-1 classifier copy of earlier runs no longer fits."""
    from monai.networks.nets import DenseNet

    from monai_xai.errors import InputError
    from monai_xai.networks.nets import LeakyResNetClassifier

    configs = (
        CONFIGS / "train.json",
        REPO / "configs/datasets/pneumoniamnist.json",
        CONFIGS / "evaluate.json",
    )
    assert _parser(*configs, bundle_root=str(tmp_path)).get_parsed_content("judge") is None
    trained = _parser(*configs).get_parsed_content("judge_def")
    torch.save(trained.state_dict(), tmp_path / "judge.pt")
    judge = _parser(*configs, judge_checkpoint=str(tmp_path / "judge.pt")).get_parsed_content("judge")
    assert isinstance(judge[-1], DenseNet)
    assert all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), trained.state_dict().values()))
    torch.save(LeakyResNetClassifier().state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(RuntimeError) as info:  # the config parser wraps the loader's error
        _parser(*configs, judge_checkpoint=str(tmp_path / "resnet.pt")).get_parsed_content("judge")
    assert isinstance(info.value.__cause__, InputError)
    assert "resnet.pt: checkpoint does not fit ResizedInput" in str(info.value.__cause__)


# ----------------------------------------------------------------------------------------- the report


class _BrightestPixel(nn.Module):
    """Class 1 when the brightest pixel exceeds 0.75."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        peak = images.flatten(1).amax(dim=1)
        return torch.stack([0.75 - peak, peak - 0.75], dim=1) * 20


class _PeakJudge(nn.Module):
    """The same rule through a linear head on (peak, mean) features: those are its penultimate features."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-20.0, 0.0], [20.0, 0.0]]))
            self.head.bias.copy_(torch.tensor([15.0, -15.0]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        flat = images.flatten(1)
        return self.head(torch.stack([flat.amax(dim=1), flat.mean(dim=1)], dim=1))


def _evaluation(sizes=(5, 7, 12)):
    """24 images of 5x5, each a lesion at its own pixel that A covers exactly: class 0 lesions (0.40-0.51)
    brighten by 0.45, class 1 lesions (0.89-1.0) darken by 0.6, so every translation flips; another image's
    map or a uniform one leaves the lesion almost as it is, so no control flips."""
    items = [(i % 2, (0.4 if i % 2 == 0 else 0.89) + 0.01 * (i // 2)) for i in range(24)]
    classifier, start = _BrightestPixel(), 0
    for size in sizes:
        batch = items[start : start + size]
        images, attention = torch.zeros(size, 1, 5, 5), torch.zeros(size, 1, 5, 5)
        for i, (_, value) in enumerate(batch):
            images.view(size, -1)[i, start + i] = value
            attention.view(size, -1)[i, start + i] = 1.0
        labels = torch.tensor([label for label, _ in batch])
        generated = (images + torch.where(labels == 0, 0.45, -0.6).view(-1, 1, 1, 1)).clamp(0, 1)
        fake = masked_translation(images, generated, attention)
        yield {
            "image": images, "attention": attention, "generated": generated, "fake": fake,
            "pred": classifier(images), "pred_after": classifier(fake), "label": labels,
            "source_class": labels, "target_class": 1 - labels, "cam": attention.clone(),
            "name": [f"case{start + i}.png" for i in range(size)],
        }  # fmt: skip
        start += size


def _report(output_dir: Path, judge: nn.Module | None) -> dict:
    engine = Engine(lambda engine, output: output)
    engine.network = _BrightestPixel()
    report = CounterfactualReportHandler(
        output_dir, ["benign", "malignant"], n_panels=0, judge=judge, n_boot=200
    )
    report.attach(engine)
    engine.run(list(_evaluation()), max_epochs=1)
    return json.loads((output_dir / "metrics.json").read_text())


def test_report_records_architectures_intervals_judged_controls_and_realism(tmp_path) -> None:
    from monai_xai.handlers.counterfactual_report import _numbers

    plain = _report(tmp_path / "plain" / "eval_test", judge=None)
    assert plain["classifier"]["architecture"] == "_BrightestPixel" and "judge" not in plain
    assert not any(key.startswith("judge") for key in plain)
    metrics = _report(tmp_path / "busi" / "eval_test", judge=_PeakJudge())
    assert (
        metrics["classifier"]["architecture"] == "_BrightestPixel" and metrics["classifier"]["accuracy"] == 1
    )
    assert metrics["judge"] == {"architecture": "_PeakJudge"}
    for judge in ("", "judge_"):
        for suffix in ("", "_from_0", "_from_1"):
            assert metrics[f"{judge}flip_rate{suffix}"] == 1.0
            assert (
                metrics[f"{judge}control_flip_rate{suffix}"]
                == metrics[f"{judge}uniform_flip_rate{suffix}"]
                == 0
            )
            interval = metrics[f"{judge}flip_rate_intervals"][f"{judge}flip_rate{suffix}"]
            assert interval == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 24 if not suffix else 12}
        intervals = metrics[f"{judge}flip_rate_intervals"]
        assert intervals[f"{judge}control_flip_rate_from_1"]["mean"] == 0.0
        assert intervals[f"{judge}flip_rate_correct_only"]["n"] == 24
        gaps = metrics[f"{judge}control_gaps"]
        assert gaps["uniform_from_0"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 12}
        assert metrics[f"{judge}controls_met"] is True
    # KID in the judge's (peak, mean) features: the translations lie closer to the real target class
    for cls in (0, 1):
        kid, before = metrics[f"judge_kid_from_{cls}"], metrics[f"judge_kid_untranslated_from_{cls}"]
        assert set(kid) == {"mean", "ci95", "n_real", "n_fake", "subset_size", "n_subsets"}
        assert kid["n_real"] == kid["n_fake"] == 12 and kid["subset_size"] == 6
        assert kid["mean"] < before["mean"] and before["ci95"][0] > 0
    predictions = json.loads((tmp_path / "busi" / "eval_test" / "predictions.json").read_text())
    assert all(p["judge_flipped"] and p["judge_flipped_uniform"] is False for p in predictions)
    flat = _numbers(metrics)  # what MLflow gets: numbers only
    assert flat["controls_met"] == 1.0 and flat["control_gaps_uniform_from_0_ci95_low"] == 1.0
    assert flat["classifier_accuracy"] == 1.0 and "classifier_architecture" not in flat
    assert "judge_kid_from_0_mean" in flat and "confusion_before" not in flat


def test_results_file_and_renderer_carry_the_new_keys(tmp_path) -> None:
    """The agcyclegan collector keeps both architectures, the judge's controls, the intervals, the paired
    control gaps and the KID; the targets decide the controls by the paired intervals, by both networks;
    the rendered block shows them. A judge of the classifier's own architecture, or an evaluation from
    before the paired intervals, is refused."""
    from monai_xai.errors import InputError
    from monai_xai.experiments import agcyclegan

    _report(tmp_path / "busi" / "eval_test", judge=_PeakJudge())
    report = agcyclegan.collect(tmp_path / "busi", "busi")
    assert report["classifier"]["architecture"] == "_BrightestPixel"
    assert report["classifier"]["intervals"]["accuracy"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 24}
    assert report["judge"]["architecture"] == "_PeakJudge" and report["judge"]["accuracy"] == 1.0
    assert report["judge_uniform_flip_rate_from_1"] == 0.0 and report["judge_kid_from_0"]["n_fake"] == 12
    assert report["control_gaps"]["control_from_1"]["ci95"] == [1.0, 1.0]
    assert report["flip_rate_intervals"]["flip_rate_from_0"]["n"] == 12
    assert report["targets"]["verdicts"] == {
        "controls": "met",
        "judge_controls": "met",
    }  # BUSI: no flip target
    assert report["targets"]["all_met"]
    table = agcyclegan.render(report)
    study = "AG-CycleGAN (study's loss)"
    assert (
        f"| benign → malignant | {study} | 12 | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] | 0.000" in table
    )
    assert (
        "| judge's flip rate | judge: shuffled maps | judge: uniform maps | KID to the real target" in table
    )
    assert f"| malignant → benign | {study} | judge | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] |" in table
    assert (
        "| this run's classifier (_BrightestPixel) | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] |" in table
    )
    assert "| judge (_PeakJudge, trained apart) | 1.000 |" in table
    assert "a _PeakJudge trained apart on the training split, which neither GAN saw" in table
    assert (
        "| both controls flip the judge less than the translations, each direction (paired 95 % interval "
        "of the difference above 0) | met |" in table
    )
    # a judge of the classifier's architecture says little: refused
    _report(tmp_path / "same" / "eval_test", judge=_BrightestPixel())
    with pytest.raises(
        InputError, match="judge has the explained classifier's architecture \\(_BrightestPixel\\)"
    ):
        agcyclegan.collect(tmp_path / "same", "busi")
    # an evaluation from before the paired intervals: rerun it
    metrics_file = tmp_path / "busi" / "eval_test" / "metrics.json"
    old = {k: v for k, v in json.loads(metrics_file.read_text()).items() if "gaps" not in k}
    metrics_file.write_text(json.dumps(old))
    with pytest.raises(InputError, match="no control_gaps, judge_control_gaps: an evaluation from before"):
        agcyclegan.collect(tmp_path / "busi", "busi")
