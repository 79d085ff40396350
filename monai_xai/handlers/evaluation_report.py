"""Everything an evaluation run leaves behind: predictions, metrics, figures, and their MLflow copy."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from ignite.engine import Engine

from monai_xai.engines.outputs import ATTENTION_MAP, HAS_MASK, MASK
from monai_xai.handlers.base import ReportHandler
from monai_xai.utils import batch_strings

__all__ = ["MARKER_COLUMNS", "MARKER_KEYS", "EvaluationReportHandler", "flatten_report"]

logger = logging.getLogger(__name__)

#: Sections of ``metrics.json`` holding one float per name, flattened for MLflow and cross-validation.
_FLAT_SECTIONS = ("image", "patient", "image_at_threshold", "patient_at_threshold", "calibration")
#: Per-image agreement measures of ``attention_per_image.csv`` (:func:`monai_xai.metrics.agreement_scores`).
AGREEMENT_COLUMNS = ("map_mse", "pointing_game", "energy_inside_mask", "map_iou", "lesion_hit_rate")
#: Bootstrap resamples behind each 95 % interval of an evaluation.
N_BOOT = 1000
#: Item keys of a dataset with a planted shortcut marker (a CSV's ``extra_cols``): the marker drawn (empty or
#: ``0`` for none), whether it agrees with the label (``1``/``0``), and its box ``"x0 y0 x1 y1"`` in
#: fractions of the image (:func:`monai_xai.metrics.parse_box`).
MARKER_KEYS = ("marker", "marker_agrees", "marker_box")
#: Columns of ``marker_per_image.csv``: one row per image with a marker region and map method.
MARKER_COLUMNS = ("source", "marker", "marker_agrees", "method", "marker_energy")


def flatten_report(metrics: dict, prefix: str = "") -> dict[str, float]:
    """``metrics.json`` as flat names such as ``<prefix>image_auc`` or ``<prefix>gradcampp_pointing_game``.

    The one naming used for MLflow metrics and cross-validation summaries.
    """
    flat = {}
    for level in _FLAT_SECTIONS:
        for name, value in metrics.get(level, {}).items():
            if isinstance(value, int | float) and value is not None:
                flat[f"{prefix}{level}_{name}"] = float(value)
    for section, level in (("intervals", "image"), ("patient_intervals", "patient")):
        for name, interval in metrics.get(section, {}).items():
            low, high = map(float, interval["ci95"])
            flat[f"{prefix}{level}_{name}_ci95_low"], flat[f"{prefix}{level}_{name}_ci95_high"] = low, high
    for method, scores in metrics.get("attention_agreement", {}).items():
        for name, value in scores.items():
            flat[f"{prefix}{method}_{name}"] = float(value)
    shortcut = metrics.get("shortcut", {})
    if shortcut.get("worst_group_accuracy") is not None:
        flat[f"{prefix}worst_group_accuracy"] = float(shortcut["worst_group_accuracy"])
    for group, value in shortcut.get("group_accuracy", {}).items():
        flat[f"{prefix}group_accuracy_{group}"] = float(value)
    for method, value in shortcut.get("marker_energy", {}).items():
        if value is not None:
            flat[f"{prefix}{method}_marker_energy"] = float(value)
    return flat


class EvaluationReportHandler(ReportHandler):
    """Collects one pass of an :class:`~monai_xai.engines.AttentionEvaluator` and writes the report.

    Writes ``predictions.csv``, ``metrics.json`` (image level, patient level when items carry a
    ``patient``, and attention agreement of the network's own map and of each saliency
    baseline), and figures (confusion matrix, ROC, reliability diagram, attention overlays); then logs
    metrics and files to the MLflow run named ``run_name``. ``saliency_fns`` maps a method name to a callable
    ``(images, class_idx) -> maps`` (e.g. :class:`~monai_xai.visualize.CAMSaliency`), evaluated on the
    same images for the predicted classes.

    The figures a clinician reads come twice: at the argmax (``image``, with the threshold-free AUC and
    average precision, balanced accuracy and calibration) and, given the checkpoint's
    ``operating_point`` (:class:`~monai_xai.handlers.OperatingPointFitter`, chosen on validation), at its
    threshold on the temperature-scaled probabilities (``image_at_threshold``, ``patient_at_threshold``).
    ``intervals`` holds stratified bootstrap 95 % intervals (patients resampled whole) of the headline
    figures. A split predicted as (almost) one class is named in ``warnings``, in the log and at the end of
    the run's output.

    Items that carry a planted shortcut's :data:`MARKER_KEYS` (DecoyBUSI, the demo phantoms: the CSV's
    ``extra_cols``) add ``shortcut`` to ``metrics.json``: accuracy per group of class x (marker agrees /
    disagrees), the worst group's, and each map's share of energy on the marker over the images that carry
    one (``marker_per_image.csv``: every image with a region, drawn or not), beside ``marker_area_share``,
    what a map spread evenly puts there.

    Args:
        output_dir: folder of the report.
        num_classes: number of classes of the classifier.
        class_names: names of the classes, in label order; class indices when None.
        saliency_fns: saliency baselines by method name, each ``(images, class_idx) -> maps``.
        n_overlays: how many images the overlay figure shows.
        split_name: name of the evaluated split, put before the logged metric names.
        tracking_uri: MLflow tracking URI.
        experiment_name: MLflow experiment of the run.
        run_name: MLflow run the report is logged to; nothing is logged without it.
        operating_point: the checkpoint's operating point record (threshold, temperature), or None.
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
        operating_point: dict | None = None,
    ) -> None:
        super().__init__(output_dir, tracking_uri, experiment_name, run_name)
        self.operating_point = operating_point
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
        self._mask_sources: list[str] = []
        self._overlay_items: list[tuple] = []
        self._agrees: list[str] = []
        self._marker_rows: list[dict] = []
        self._marker_areas: list[float] = []

    def _collect_markers(self, batch: dict, maps: dict[str, torch.Tensor], n: int) -> None:
        """Whether each item's marker agrees with its label, and each map's energy on the marker."""
        from monai_xai.metrics import box_coverage, marker_energy

        markers, agrees, boxes = (batch_strings(batch, key, n) for key in MARKER_KEYS)
        self._agrees += agrees
        sources = batch_strings(batch, "source", n)
        # every image with a region, drawn or not: a clean twin is scored on its decoy copy's marked images
        boxed = [i for i in range(n) if boxes[i]]
        self._marker_areas += [
            float(box_coverage((1, 1), boxes[i]).sum()) for i in boxed if markers[i] not in ("", "0")
        ]
        for method, values in maps.items():
            energy = marker_energy(values[boxed].numpy(), [boxes[i] for i in boxed]) if boxed else []
            for i, share in zip(boxed, list(energy)):
                cells = (sources[i], markers[i], agrees[i], method, "" if np.isnan(share) else f"{share:.6f}")
                self._marker_rows.append(dict(zip(MARKER_COLUMNS, cells)))

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
            sources = batch_strings(batch, "source", n)
            self._mask_sources += [src for src, k in zip(sources, keep.tolist()) if k]
            for name, m in maps.items():
                self._maps.setdefault(name, []).append(m[keep])
        if "marker_agrees" in batch:
            self._collect_markers(batch, maps, n)
        for i in range(min(n, self.n_overlays - len(self._overlay_items))):
            mask = out[MASK][i].cpu() if MASK in out else None
            self._overlay_items.append((out["image"][i].cpu(), {k: v[i] for k, v in maps.items()}, mask))

    def write(self, engine: Engine) -> None:
        probs = torch.cat(self._probs).numpy()
        labels = torch.cat(self._labels).numpy()
        labelled = labels >= 0
        metrics: dict = {"n_images": int(len(labels))}
        if labelled.any():
            metrics.update(self._decision_metrics(labels[labelled], probs[labelled], labelled))
        if self._masks and sum(len(m) for m in self._masks):
            metrics.update(self._agreement())
        if len(self._agrees) == len(labels) and any(a in ("0", "1") for a in self._agrees):
            metrics["shortcut"] = self._shortcut(labels, probs)
        for warning in metrics.get("warnings", []):
            logger.warning(warning)
        self._write_predictions(self._calibrated(probs), labels)
        self.save_json("metrics.json", metrics)
        self._write_figures(metrics, probs, labels)
        self.results = metrics
        self.log(flatten_report(metrics, prefix=f"{self.split_name}_"), [self.output_dir], self.split_name)

    def _agreement(self) -> dict:
        """Attention agreement of every map with the masks: the means, their bootstrap 95 % intervals, and
        ``attention_per_image.csv`` (one row per image and map) so that runs can be pooled and paired."""
        from monai_xai.metrics import agreement_scores, bootstrap_ci, mean_of, summarize_agreement

        masks = torch.cat(self._masks)
        means, intervals, rows = {}, {}, []
        for method, maps in self._maps.items():
            scores = agreement_scores(torch.cat(maps), masks)
            means[method] = {k: float(v) for k, v in summarize_agreement(scores).items()}
            per_image = {k: v.numpy() for k, v in scores.items() if k != "has_mask"}
            intervals[method] = {
                name: bootstrap_ci(mean_of, values[~np.isnan(values)], n_boot=N_BOOT).to_dict()
                for name, values in per_image.items()
                if (~np.isnan(values)).any()
            }
            for i, source in enumerate(self._mask_sources):
                rows.append(
                    {"source": source, "method": method, **{k: f"{v[i]:.5f}" for k, v in per_image.items()}}
                )
        columns = ["source", "method", *AGREEMENT_COLUMNS]
        self.save_csv("attention_per_image.csv", columns, rows)
        return {"attention_agreement": means, "attention_intervals": intervals}

    def _shortcut(self, labels: np.ndarray, probs: np.ndarray) -> dict:
        """Group accuracies at the argmax (class x marker agrees), the worst group's with its stratified
        bootstrap interval, and each map's mean energy on the marker; writes ``marker_per_image.csv``."""
        from monai_xai.metrics import (
            bootstrap_ci,
            group_accuracy,
            group_ids,
            group_name,
            worst_group_accuracy,
        )

        known = np.array([(a in ("0", "1")) and y >= 0 for a, y in zip(self._agrees, labels)])
        agrees = np.array([a == "1" for a in self._agrees])[known]
        y, predicted = labels[known], probs[known].argmax(axis=1)
        ids = group_ids(y, agrees)
        groups = group_accuracy(y, predicted, agrees, self.class_names)
        counts = {group_name(g // 2, bool(g % 2), self.class_names): int((ids == g).sum()) for g in set(ids)}
        worst = min(groups, key=groups.get)
        interval = bootstrap_ci(worst_group_accuracy, y, predicted, agrees, n_boot=N_BOOT, stratify=ids)
        energy: dict[str, list[float]] = {}
        for row in self._marker_rows:
            shares = energy.setdefault(row["method"], [])
            if row["marker_energy"] and row["marker"] not in ("", "0"):
                shares.append(float(row["marker_energy"]))
        self.save_csv("marker_per_image.csv", MARKER_COLUMNS, self._marker_rows)
        return {
            "group_accuracy": groups,
            "group_counts": {name: counts[name] for name in groups},
            "worst_group": worst,
            "worst_group_accuracy": groups[worst],
            "worst_group_interval": interval.to_dict(),
            "marker_energy": {m: float(np.mean(v)) if v else None for m, v in energy.items()},
            "marker_images": len(self._marker_areas),
            "marker_area_share": float(np.mean(self._marker_areas)) if self._marker_areas else None,
        }

    def _calibrated(self, probs: np.ndarray) -> np.ndarray:
        """``probs`` under the operating point's temperature (unchanged without one)."""
        from monai_xai.metrics import apply_temperature

        temperature = (self.operating_point or {}).get("temperature", 1.0)
        return probs if temperature == 1.0 else apply_temperature(probs, temperature, inputs="probs")

    def _decision_metrics(self, labels: np.ndarray, probs: np.ndarray, labelled: np.ndarray) -> dict:
        """Image- and patient-level figures at the argmax and at the operating point, with intervals."""
        from monai_xai.metrics import (
            classification_metrics,
            expected_calibration_error,
            single_class_warning,
        )

        image = classification_metrics(
            labels, probs, self.num_classes, details=True, class_names=self.class_names
        )
        out: dict = {"confusion_matrix": np.asarray(image.pop("confusion_matrix")).tolist()}
        counts = image.pop("predicted_class_counts")
        out["per_class"] = image.pop("per_class", {})
        out["image"] = {k: float(v) for k, v in image.items()}
        calibrated = self._calibrated(probs)
        out["calibration"] = {"ece": expected_calibration_error(labels, probs)}
        if calibrated is not probs:
            out["calibration"]["ece_temperature_scaled"] = expected_calibration_error(labels, calibrated)
        warnings = [single_class_warning(counts, f"{self.split_name} (argmax)", self.class_names)]
        threshold = (self.operating_point or {}).get("threshold")
        if threshold is not None:
            out["operating_point"] = dict(self.operating_point or {})
            out["image_at_threshold"] = self._at_threshold(labels, calibrated, threshold)
            decided = np.bincount((calibrated[:, 1] >= threshold).astype(np.int64), minlength=2).tolist()
            split = f"{self.split_name} (threshold {threshold:.3g})"
            warnings.append(single_class_warning(decided, split, self.class_names))
        patients = [p for p, keep in zip(self._patients, labelled) if keep]
        grouped = all(self._patients) and len(set(self._patients)) < len(self._patients)
        if grouped:
            out.update(self._patient_metrics(labels, calibrated, probs, patients, threshold))
        # images of one patient are one unit of evidence: resampled together
        out["intervals"] = self._intervals(
            labels, probs, calibrated, threshold, patients if grouped else None
        )
        out["warnings"] = [w for w in warnings if w]
        return out

    @staticmethod
    def _at_threshold(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
        from monai_xai.metrics import metrics_at_threshold

        found = metrics_at_threshold(labels, probs[:, 1], threshold)
        found.pop("confusion_matrix")
        return {k: float(v) for k, v in found.items()}

    def _patient_metrics(
        self, labels: np.ndarray, calibrated: np.ndarray, probs: np.ndarray, patients: list[str], threshold
    ) -> dict:
        """Mean probability per patient (the ABN study's patient level), at the argmax and the threshold."""
        from monai_xai.metrics import aggregate_by_patient, patient_level_metrics

        patient = patient_level_metrics(labels, probs, patients, self.num_classes)
        patient.pop("confusion_matrix", None)
        out: dict = {"patient": {k: float(v) for k, v in patient.items()}}
        _, patient_labels, mean_probs = aggregate_by_patient(labels, probs, patients)
        _, _, mean_calibrated = aggregate_by_patient(labels, calibrated, patients)
        if threshold is not None:
            out["patient_at_threshold"] = self._at_threshold(patient_labels, mean_calibrated, threshold)
        out["patient_intervals"] = self._intervals(patient_labels, mean_probs, mean_calibrated, threshold)
        return out

    def _intervals(
        self,
        labels: np.ndarray,
        probs: np.ndarray,
        calibrated: np.ndarray,
        threshold: float | None,
        groups: list[str] | None = None,
    ) -> dict[str, dict]:
        """Stratified bootstrap 95 % intervals of the headline figures (by class, ``N_BOOT`` resamples; whole
        ``groups`` when given): the argmax figures of ``probs``, the threshold's of ``calibrated``."""
        from monai_xai.metrics import auc, balanced_accuracy, bootstrap_ci, sensitivity, specificity

        classes = np.arange(self.num_classes)
        predicted = probs.argmax(axis=1)
        options = {"n_boot": N_BOOT, "stratify": 0, "groups": None if groups is None else np.asarray(groups)}

        def balanced(y: np.ndarray, p: np.ndarray) -> float:
            return balanced_accuracy(y, p, classes=classes)

        found = {"balanced_accuracy": bootstrap_ci(balanced, labels, predicted, **options)}
        if self.num_classes == 2:
            found["auc"] = bootstrap_ci(auc, labels, probs[:, 1], **options)
        if threshold is not None:
            decided = (calibrated[:, 1] >= threshold).astype(np.int64)
            for name, fn in (
                ("balanced_accuracy_at_threshold", balanced),
                ("sensitivity_at_threshold", sensitivity),
                ("specificity_at_threshold", specificity),
            ):
                found[name] = bootstrap_ci(fn, labels, decided, **options)
        return {name: interval.to_dict() for name, interval in found.items()}

    def _write_predictions(self, probs: np.ndarray, labels: np.ndarray) -> None:
        """One row per image: the argmax ``pred`` and, with an operating point, the decision at its threshold
        (probabilities after its temperature)."""
        from monai_xai.metrics import decide

        threshold = (self.operating_point or {}).get("threshold")
        decided = decide(probs, threshold)
        columns = ["source", "patient", "label", "pred", "decision", *[f"prob_{c}" for c in self.class_names]]
        rows = (
            dict(zip(columns, [src, pat, int(lab), int(p.argmax()), int(d), *[f"{x:.5f}" for x in p]]))
            for src, pat, lab, p, d in zip(self._sources, self._patients, labels, probs, decided)
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
            self._write_reliability(labels[labelled], probs[labelled])
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

    def _write_reliability(self, labels: np.ndarray, probs: np.ndarray) -> None:
        """Reliability diagram, before and (with a temperature) after temperature scaling."""
        from monai_xai.metrics import reliability_curve
        from monai_xai.visualize import reliability_diagram_figure, save_figure

        curves = {"as trained": reliability_curve(labels, probs)}
        calibrated = self._calibrated(probs)
        if calibrated is not probs:
            curves["temperature scaled"] = reliability_curve(labels, calibrated)
        title = f"Reliability, {self.split_name} ({len(labels)} images)"
        save_figure(reliability_diagram_figure(curves, title=title), self.output_dir / "reliability.png")
