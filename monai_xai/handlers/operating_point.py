"""The decision rule of a checkpoint, chosen on the validation split and stored beside it."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine

from monai_xai.handlers.checkpoint_record import CheckpointRecordFitter

__all__ = ["OperatingPointFitter"]

logger = logging.getLogger(__name__)


class OperatingPointFitter(CheckpointRecordFitter):
    """Run the network over the validation split once and store its operating point beside the checkpoint.

    The record (``<checkpoint stem>.operating_point.json``, see
    :func:`~monai_xai.networks.read_operating_point`) holds the temperature (1 unless ``calibrate``: fitted
    on the validation logits by NLL) and, for two classes, the threshold on the calibrated probability of
    class 1 (Youden's J, or the highest threshold that reaches ``target_sensitivity``); with more classes the
    argmax decides and the record holds no threshold. It names the checkpoint's digest and its settings, so
    an evaluation of the same weights with the same settings reuses it (:meth:`fit` skips the pass). Nothing
    here reads the test split: evaluations, inference, export and the Deploy app apply what it stored
    (:class:`~monai_xai.handlers.checkpoint_record.CheckpointRecordFitter`).

    Args:
        checkpoint: the weights the network holds (``best.pt``).
        num_classes: classes of the classifier.
        method: ``"youden"`` (default) or ``"target_sensitivity"``.
        target_sensitivity: the sensitivity a screening setting needs; sets ``method``.
        calibrate: fit a temperature on validation (temperature scaling) before choosing the threshold.
        split_name: name of the split the evaluator runs on, recorded (``"val"``).
    """

    kind = "operating_point"

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        num_classes: int,
        method: str = "youden",
        target_sensitivity: float | None = None,
        calibrate: bool = False,
        split_name: str = "val",
    ) -> None:
        from monai.utils import look_up_option

        from monai_xai.flags import as_bool
        from monai_xai.metrics.operating_point import OPERATING_POINT_METHODS

        super().__init__(checkpoint, split_name)
        self.num_classes = int(num_classes)
        self.method = (
            "target_sensitivity"
            if target_sensitivity is not None
            else look_up_option(method, OPERATING_POINT_METHODS)
        )
        self.target_sensitivity = None if target_sensitivity is None else float(target_sensitivity)
        self.calibrate = as_bool(calibrate, "calibrate")
        self._logits: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "method": self.method,
            "target_sensitivity": self.target_sensitivity,
            "calibrated": self.calibrate,
            "num_classes": self.num_classes,
        }

    def reset(self, _: Engine) -> None:
        self._logits, self._labels = [], []

    def collect(self, engine: Engine) -> None:
        out = engine.state.output
        self._logits.append(out["pred"].detach().float().cpu())
        self._labels.append(out["label"].reshape(-1).long().cpu())

    def choose(self) -> dict[str, Any]:
        from monai_xai.metrics.calibration import (
            TEMPERATURE_BOUNDS,
            apply_temperature,
            expected_calibration_error,
            fit_temperature,
        )
        from monai_xai.metrics.operating_point import choose_threshold

        logits, labels = torch.cat(self._logits).numpy(), torch.cat(self._labels).numpy()
        raw = apply_temperature(logits, 1.0, inputs="logits")
        temperature, fit = 1.0, "not asked (calibrate false)"
        if self.calibrate and bool((logits.argmax(axis=1) == labels).all()):
            # every validation image right: the NLL falls as T -> 0 and would push all probabilities to 0 or 1
            fit = "not applied: the network classifies every validation image correctly (no NLL minimum)"
            logger.warning(f"temperature scaling {fit}; probabilities left as trained")
        elif self.calibrate:
            temperature, fit = fit_temperature(logits, labels, inputs="logits"), "fitted on validation NLL"
            if any(math.isclose(temperature, bound, rel_tol=1e-3) for bound in TEMPERATURE_BOUNDS):
                fit = f"fitted on validation NLL, at its search bound {temperature:.3g}"
                logger.warning(f"temperature scaling {fit}: the validation split barely constrains it")
        probs = apply_temperature(logits, temperature, inputs="logits")
        record: dict[str, Any] = {
            "temperature": float(temperature),
            "temperature_fit": fit,
            "n": int(labels.size),
            "ece_before": expected_calibration_error(labels, raw),
            "ece_after": expected_calibration_error(labels, probs),
            "threshold": None,
        }
        if self.num_classes == 2:
            point = choose_threshold(
                labels, probs[:, 1], self.method, self.target_sensitivity, split=self.split_name
            )
            record.update({k: v for k, v in point.to_dict().items() if k not in ("method", "split", "n")})
            record["threshold"] = float(point.threshold)
        return record

    def summary(self, record: Mapping[str, Any]) -> str:
        parts = [f"temperature {record['temperature']:.3g}", f"ECE {record['ece_before']:.3f}"]
        if record.get("threshold") is not None:
            parts.insert(0, f"threshold {record['threshold']:.4g} ({record['method']})")
        return f"{record['n']} images, " + ", ".join(parts)
