"""Everything an evaluation run leaves behind: predictions, metrics, figures, and their MLflow copy."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from ignite.engine import Engine

from monai_xai.engines.outputs import ATTENTION_MAP, HAS_MASK, MASK
from monai_xai.handlers.base import ReportHandler
from monai_xai.utils import batch_strings

__all__ = ["EvaluationReport", "flatten_report"]


def flatten_report(metrics: dict, prefix: str = "") -> dict[str, float]:
    """``metrics.json`` as flat names such as ``<prefix>image_auc`` or ``<prefix>gradcampp_pointing_game``.

    The one naming used for MLflow metrics and cross-validation summaries.
    """
    flat = {}
    for level in ("image", "patient"):
        for name, value in metrics.get(level, {}).items():
            flat[f"{prefix}{level}_{name}"] = float(value)
    for method, scores in metrics.get("attention_agreement", {}).items():
        for name, value in scores.items():
            flat[f"{prefix}{method}_{name}"] = float(value)
    return flat


class EvaluationReport(ReportHandler):
    """Collects one pass of an :class:`~monai_xai.engines.AttentionEvaluator` and writes the report.

    Writes ``predictions.csv``, ``metrics.json`` (image level, patient level when items carry a
    ``patient``, and attention agreement of the network's own map and of each saliency
    baseline), and figures (confusion matrix, ROC, attention overlays); then logs metrics and
    files to the MLflow run named ``run_name``. ``saliency_fns`` maps a method name to a callable
    ``(images, class_idx) -> maps`` (e.g. :class:`~monai_xai.visualize.CAMSaliency`), evaluated on the
    same images for the predicted classes.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        saliency_fns: dict[str, Callable] | None = None,
        n_overlays: int = 8,
        split_name: str = "test",
        tracking_uri: str | None = None,
        experiment_name: str = "monai_xai",
        run_name: str | None = None,
    ):
        super().__init__(output_dir, tracking_uri, experiment_name, run_name)
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.saliency_fns = saliency_fns or {}
        self.n_overlays = n_overlays
        self.split_name = split_name
        self.results: dict = {}

    def reset(self, engine: Engine) -> None:
        self._probs, self._labels, self._sources, self._patients = [], [], [], []
        self._maps: dict[str, list[torch.Tensor]] = {}
        self._masks: list[torch.Tensor] = []
        self._overlay_items: list[tuple] = []

    def collect(self, engine: Engine) -> None:
        out, batch = engine.state.output, engine.state.batch
        n = len(out["pred"])
        self._probs.append(torch.softmax(out["pred"].detach().float(), dim=1).cpu())
        self._labels.append(out["label"].cpu() if "label" in out else torch.full((n,), -1))
        self._sources += batch_strings(batch, "source", n)
        self._patients += batch_strings(batch, "patient", n)
        maps = {}
        if ATTENTION_MAP in out:
            maps["attention"] = out[ATTENTION_MAP].detach().float().cpu()
        predicted = out["pred"].argmax(dim=1)
        for name, fn in self.saliency_fns.items():
            maps[name] = fn(out["image"], predicted).detach().float().cpu()
        if maps and MASK in out:
            keep = out[HAS_MASK].view(-1).bool().cpu() if HAS_MASK in out else torch.ones(n, dtype=torch.bool)
            self._masks.append(out[MASK].cpu()[keep])
            for name, m in maps.items():
                self._maps.setdefault(name, []).append(m[keep])
        for i in range(min(n, self.n_overlays - len(self._overlay_items))):
            mask = out[MASK][i].cpu() if MASK in out else None
            self._overlay_items.append((out["image"][i].cpu(), {k: v[i] for k, v in maps.items()}, mask))

    def write(self, engine: Engine) -> None:
        from monai_xai.metrics import attention_agreement, classification_metrics, patient_level_metrics

        probs = torch.cat(self._probs).numpy()
        labels = torch.cat(self._labels).numpy()
        labelled = labels >= 0
        metrics: dict = {"n_images": int(len(labels))}
        if labelled.any():
            image_level = classification_metrics(labels[labelled], probs[labelled], self.num_classes)
            cm = np.asarray(image_level.pop("confusion_matrix"))
            metrics["image"] = {k: float(v) for k, v in image_level.items()}
            metrics["confusion_matrix"] = cm.tolist()
            patients = np.asarray(self._patients)
            if all(self._patients) and len(set(self._patients)) < len(self._patients):
                patient_level = patient_level_metrics(
                    labels[labelled], probs[labelled], patients[labelled], self.num_classes
                )
                patient_level.pop("confusion_matrix", None)
                metrics["patient"] = {k: float(v) for k, v in patient_level.items()}
        if self._masks and sum(len(m) for m in self._masks):
            masks = torch.cat(self._masks)
            metrics["attention_agreement"] = {
                name: {k: float(v) for k, v in attention_agreement(torch.cat(maps), masks).items()}
                for name, maps in self._maps.items()
            }
        self._write_predictions(probs, labels)
        self.save_json("metrics.json", metrics)
        self._write_figures(metrics, probs, labels)
        self.results = metrics
        self.log(flatten_report(metrics, prefix=f"{self.split_name}_"), [self.output_dir], self.split_name)

    def _write_predictions(self, probs: np.ndarray, labels: np.ndarray) -> None:
        columns = ["source", "patient", "label", "pred", *[f"prob_{c}" for c in self.class_names]]
        rows = (
            dict(zip(columns, [src, pat, int(lab), int(p.argmax()), *[f"{x:.5f}" for x in p]]))
            for src, pat, lab, p in zip(self._sources, self._patients, labels, probs)
        )
        self.save_csv("predictions.csv", columns, rows)

    def _write_figures(self, metrics: dict, probs: np.ndarray, labels: np.ndarray) -> None:
        from monai_xai.visualize import (
            attention_overlay_figure,
            confusion_matrix_figure,
            roc_curve_figure,
            save_figure,
        )

        if "confusion_matrix" in metrics:
            fig = confusion_matrix_figure(np.asarray(metrics["confusion_matrix"]), self.class_names)
            save_figure(fig, self.output_dir / "confusion_matrix.png")
            labelled = labels >= 0
            save_figure(
                roc_curve_figure(labels[labelled], probs[labelled], self.class_names),
                self.output_dir / "roc.png",
            )
        if self._overlay_items and self._overlay_items[0][1]:
            images, maps, masks = zip(*self._overlay_items)
            has_masks = all(m is not None for m in masks)
            for name in maps[0]:
                fig = attention_overlay_figure(images, [m[name] for m in maps], masks if has_masks else None)
                save_figure(fig, self.output_dir / f"overlays_{name}.png")
