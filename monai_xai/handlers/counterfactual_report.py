"""Report of a counterfactual explanation pass: panels, before/after confusion, flip rate, map agreement."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine

from monai_xai.handlers.base import ReportHandler

__all__ = ["CounterfactualReport"]


def _safe_name(name: str) -> str:
    """A file stem from an item's file name or MedMNIST source (``file.npz:test[3]``)."""
    base = re.sub(r"\.(png|jpe?g|bmp|tiff?|nii(\.gz)?|dcm)$", "", Path(name).name, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", base).strip("_")


class CounterfactualReport(ReportHandler):
    """Collects a :class:`~monai_xai.engines.CounterfactualEvaluator` pass and writes its report.

    Per image (the first ``n_panels``, all when ``None``): a PNG panel (input, attention, A*G, translation,
    difference, Grad-CAM++), and for 3D the volumes as NIfTI. At the end: ``metrics.json`` (classifier
    metrics, confusion matrices before/after translation, flip rate, attention vs Grad-CAM++ correlation
    and top-k IoU, and agreement with expert masks when the items carry them), ``predictions.json``,
    confusion-matrix figures, an overview grid; all logged to the MLflow run ``run_name`` when
    ``tracking_uri`` and ``run_name`` are given.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        n_panels: int | None = None,
        n_overview: int = 8,
        topk_fraction: float = 0.1,
        split_name: str = "test",
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
    ) -> None:
        super().__init__(output_dir, tracking_uri, experiment_name, run_name)
        self.class_names = list(class_names)
        self.n_panels, self.n_overview, self.topk_fraction = n_panels, n_overview, topk_fraction
        self.split_name = split_name

    def reset(self, engine: Engine | None = None) -> None:
        self.records: dict[str, list] = {}
        self.overview: dict[str, list] = {}
        self.panels: list[str] = []

    def _add(self, key: str, value) -> None:
        self.records.setdefault(key, []).append(value)

    def collect(self, engine: Engine) -> None:
        out = engine.state.output
        for key in ("pred", "pred_after"):
            self._add(key, torch.softmax(out[key].detach().float(), dim=1).cpu())
        for key in ("source_class", "target_class", "label"):
            if key in out:
                self._add(key, out[key].detach().view(-1).cpu())
        for key in ("attention", "cam", "mask"):
            if key in out:
                self._add(key, out[key].detach().float().cpu())
        self.records.setdefault("name", []).extend(out["name"])
        self._write_panels(out)

    def _write_panels(self, out: dict) -> None:
        from monai_xai.visualize import save_figure
        from monai_xai.visualize.counterfactual import counterfactual_figure, save_counterfactual_nifti

        cams = out.get("cam")
        panel_dir = self.output_dir / "panels"
        for i, name in enumerate(out["name"]):
            index = len(self.panels)
            if self.n_panels is not None and index >= self.n_panels:
                return
            parts = [out[k][i : i + 1].detach().cpu() for k in ("image", "attention", "generated", "fake")]
            cam = None if cams is None else cams[i : i + 1].detach().cpu()
            src, tgt = int(out["source_class"][i]), int(out["target_class"][i])
            stem = f"{index:04d}_{_safe_name(name)}"
            title = f"{self.class_names[src]} -> {self.class_names[tgt]}"
            fig = counterfactual_figure(*parts, cams=cam, titles=[title])
            self.panels.append(str(save_figure(fig, panel_dir / f"{stem}.png")))
            if parts[0].ndim == 5:
                save_counterfactual_nifti(panel_dir / "nifti", stem, *(p[0] for p in parts))
            if index < self.n_overview:
                for key, value in zip(("image", "attention", "generated", "fake"), parts):
                    self.overview.setdefault(key, []).append(value[0])
                self.overview.setdefault("cam", []).append(None if cam is None else cam[0])
                self.overview.setdefault("title", []).append(title)

    def compute(self) -> dict:
        """The metrics of everything collected so far."""
        from monai_xai.metrics import attention_agreement, classification_metrics
        from monai_xai.metrics.counterfactual import (
            before_after_confusion,
            flip_rate,
            map_correlation,
            topk_iou,
        )

        cat = {k: torch.cat(v) for k, v in self.records.items() if k != "name"}
        pred_before, pred_after = cat["pred"].argmax(1), cat["pred_after"].argmax(1)
        metrics: dict = {
            "n_images": int(len(pred_before)),
            "flip_rate": flip_rate(pred_after, cat["target_class"]),
        }
        for cls, name in enumerate(self.class_names):
            from_cls = cat["source_class"] == cls
            metrics[f"flip_rate_from_{name}"] = flip_rate(pred_after[from_cls], cat["target_class"][from_cls])
        if "label" in cat:
            scores = classification_metrics(cat["label"].numpy(), cat["pred"].numpy(), len(self.class_names))
            metrics["classifier"] = {k: float(v) for k, v in scores.items() if k != "confusion_matrix"}
            confusion = before_after_confusion(cat["label"], pred_before, pred_after, len(self.class_names))
            metrics["confusion_before"] = confusion["before"].tolist()
            metrics["confusion_after"] = confusion["after"].tolist()
            correct = pred_before == cat["label"]
            metrics["flip_rate_correct_only"] = flip_rate(pred_after[correct], cat["target_class"][correct])
        if "cam" in cat:
            metrics["attention_vs_gradcampp"] = {
                "correlation": float(map_correlation(cat["attention"], cat["cam"]).nanmean()),
                f"top{round(100 * self.topk_fraction)}pct_iou": float(
                    topk_iou(cat["attention"], cat["cam"], self.topk_fraction).nanmean()
                ),
            }
        if "mask" in cat and bool((cat["mask"].flatten(1) > 0.5).any()):
            metrics["mask_agreement"] = {"attention": attention_agreement(cat["attention"], cat["mask"])}
            if "cam" in cat:
                metrics["mask_agreement"]["gradcampp"] = attention_agreement(cat["cam"], cat["mask"])
        return metrics

    def write(self, engine: Engine | None = None) -> dict:
        from monai_xai.visualize import confusion_matrix_figure, save_figure
        from monai_xai.visualize.counterfactual import counterfactual_figure

        metrics = self.compute()
        self.save_json("metrics.json", metrics)
        cat_before, cat_after = torch.cat(self.records["pred"]), torch.cat(self.records["pred_after"])
        predictions = [
            {
                "source": name,
                "source_class": self.class_names[int(src)],
                "target_class": self.class_names[int(tgt)],
                "prob_target_before": float(before[int(tgt)]),
                "prob_target_after": float(after[int(tgt)]),
                "flipped": bool(after.argmax() == tgt),
                "panel": self.panels[i] if i < len(self.panels) else None,
            }
            for i, (name, src, tgt, before, after) in enumerate(
                zip(
                    self.records["name"],
                    torch.cat(self.records["source_class"]),
                    torch.cat(self.records["target_class"]),
                    cat_before,
                    cat_after,
                )
            )
        ]
        self.save_json("predictions.json", predictions)
        figures = self.output_dir / "figures"
        for when in ("before", "after"):
            if f"confusion_{when}" in metrics:
                fig = confusion_matrix_figure(
                    np.asarray(metrics[f"confusion_{when}"]),
                    self.class_names,
                    title=f"{when} translation" + (" (true = target class)" if when == "after" else ""),
                )
                save_figure(fig, figures / f"confusion_{when}.png")
        if self.overview:
            cams = self.overview["cam"] if all(c is not None for c in self.overview["cam"]) else None
            fig = counterfactual_figure(
                self.overview["image"],
                self.overview["attention"],
                self.overview["generated"],
                self.overview["fake"],
                cams=cams,
                titles=self.overview["title"],
            )
            save_figure(fig, figures / "overview.png")
        self._log(metrics)
        return metrics

    def _log(self, metrics: dict) -> None:
        flat = {}
        for key, value in metrics.items():
            if isinstance(value, dict):
                for sub, inner in value.items():
                    if isinstance(inner, dict):
                        flat.update({f"{key}_{sub}_{k}": v for k, v in inner.items()})
                    else:
                        flat[f"{key}_{sub}"] = inner
            elif isinstance(value, int | float):
                flat[key] = value
        self.log(
            {f"{self.split_name}_{k}": v for k, v in flat.items()},
            [self.output_dir / "figures", self.output_dir / "metrics.json"],
            f"counterfactual_{self.split_name}",
        )
