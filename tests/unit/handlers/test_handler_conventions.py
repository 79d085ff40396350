"""MONAI conventions of monai_xai.handlers: output_transform on epoch metrics, Args sections, name checks."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
import torch
from ignite.engine import Engine
from monai.handlers import ParamSchedulerHandler

import monai_xai.handlers as handlers
from monai_xai.errors import InputError
from monai_xai.handlers import (
    AlphaScheduleHandler,
    AttentionAgreementEpochMetric,
    ClassificationEpochMetric,
    EmbeddingStdMetric,
    FlipRateEpochMetric,
    LossAveragesMetric,
    LossEpochMetric,
    get_alpha_schedule,
    get_freeze_policy,
)
from monai_xai.losses import ABNLoss


def _run(metric, outputs: list) -> dict:
    engine = Engine(lambda engine, output: output)
    metric.attach(engine, "m")
    engine.run(outputs, max_epochs=1)
    return engine.state.metrics


def _batches() -> list[dict]:
    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 1, 0])
    maps = torch.rand(4, 1, 4, 4)
    return [
        {
            "pred": torch.randn(4, 2),
            "label": labels,
            "attention_map": maps,
            "mask": (maps > 0.5).float(),
            "loss_parts": {"loss": 1.0 + i},
            "embedding": torch.randn(4, 8),
            "pred_after": torch.randn(4, 2),
            "source_class": labels,
            "target_class": 1 - labels,
        }  # fmt: skip
        for i in range(2)
    ]


def _nested(batches: list[dict]) -> list[dict]:
    """The same outputs one level down, where only a custom ``output_transform`` finds them."""
    return [{"inner": batch} for batch in batches]


@pytest.mark.parametrize(
    "metric_type, args, keys",
    [
        (ClassificationEpochMetric, (2,), ("pred", "label")),
        (LossEpochMetric, (), ("pred", "label")),
        (LossAveragesMetric, (), ("loss_parts",)),
        (EmbeddingStdMetric, (), ("embedding",)),
        (FlipRateEpochMetric, (), ("pred_after", "source_class", "target_class")),
        (AttentionAgreementEpochMetric, (), ("attention_map", "mask", "has_mask")),
    ],
)
def test_epoch_metrics_read_through_output_transform(metric_type, args, keys) -> None:
    """A custom transform on nested outputs gives what the default gives on the engines' own layout."""
    default = _run(metric_type(*args), _batches())["m"]
    custom = metric_type(*args, output_transform=lambda out: tuple(out["inner"].get(k) for k in keys))
    assert _run(custom, _nested(_batches()))["m"] == default and default


def test_attention_agreement_skips_outputs_without_maps() -> None:
    outputs = [{k: v for k, v in batch.items() if k != "attention_map"} for batch in _batches()]
    assert _run(AttentionAgreementEpochMetric(), outputs)["m"] == {}


def test_public_handler_classes_document_their_arguments() -> None:
    modules = [
        importlib.import_module(f"{handlers.__name__}.{m.name}")
        for m in pkgutil.iter_modules(handlers.__path__)
    ]
    undocumented = [
        f"{module.__name__}.{name}"
        for module in modules
        for name in module.__all__
        if inspect.isclass(obj := getattr(module, name))
        and len(inspect.signature(obj).parameters) > 0
        and "Args:" not in (obj.__doc__ or "")
    ]
    assert len(modules) > 20 and undocumented == []


def test_unknown_names_raise_input_errors_naming_the_key() -> None:
    with pytest.raises(InputError, match="^alpha_schedule: unknown alpha schedule 'stp'"):
        get_alpha_schedule("stp", 4)
    with pytest.raises(InputError, match="^alpha_switch_epoch: "):
        get_alpha_schedule("cosine", 4, switch_epoch=2)
    with pytest.raises(InputError, match="^freeze_policy: unknown freeze policy 'gradual'"):
        get_freeze_policy("gradual", torch.nn.Identity())


def test_alpha_handler_is_monai_param_scheduler() -> None:
    loss = ABNLoss("dynamic")
    handler = AlphaScheduleHandler(loss, get_alpha_schedule("linear", 3), print_alpha=False)
    assert isinstance(handler, ParamSchedulerHandler)
    engine = Engine(lambda engine, batch: seen.append(loss.alpha))
    seen: list[float] = []
    handler.attach(engine)
    engine.run([0], max_epochs=3)
    assert seen == pytest.approx([0.9, 0.5, 0.1]) and engine.state.alpha == pytest.approx(0.1)


def test_detection_epoch_metric_reads_through_output_transform() -> None:
    box, label = torch.tensor([[2.0, 2.0, 12.0, 12.0]]), torch.tensor([0])
    output = {
        "detections": [{"boxes": box, "scores": torch.tensor([0.9]), "labels": label}],
        "boxes": [box],
        "labels": [label],
    }
    default = _run(handlers.DetectionEpochMetric(["lesion"], only="mAP"), [output])["m"]
    custom = handlers.DetectionEpochMetric(
        ["lesion"], only="mAP", output_transform=lambda out: tuple(out["inner"][k] for k in output)
    )
    assert _run(custom, [{"inner": output}])["m"] == default == pytest.approx(1.0)
