"""Report of a counterfactual explanation pass: panels, before/after confusion, flip rates with controls,
map agreement, best and worst examples."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine
from torch import nn

from monai_xai.handlers.base import ReportHandler

__all__ = ["CounterfactualReportHandler"]

#: the controls' key prefixes: the attention map of each translation replaced by another image's map
#: (shuffled), or by a uniform map of the same mean
CONTROLS = ("control", "uniform")


def _safe_name(name: str) -> str:
    """A file stem from an item's file name or MedMNIST source (``file.npz:test[3]``)."""
    base = re.sub(r"\.(png|jpe?g|bmp|tiff?|nii(\.gz)?|dcm)$", "", Path(name).name, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", base).strip("_")


def _mean(values: torch.Tensor) -> float:
    return float(values.float().nanmean()) if values.numel() else float("nan")


def _architecture(network: nn.Module) -> str:
    """The class name of ``network`` (of the wrapped module under DistributedDataParallel, of the last
    module of a ``Sequential``: the judge's input resize before its classifier)."""
    network = getattr(network, "module", network)
    if isinstance(network, nn.Sequential) and len(network):
        network = network[-1]
    return type(network).__name__


def _numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    """The numbers of nested ``metrics`` under joined keys (``classifier_auc``, ``control_gaps_uniform_from_0_
    ci95_low``) for MLflow: booleans as 0/1, an interval's ``[low, high]`` as ``_low``/``_high``, text and
    matrices left out."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_numbers(value, f"{name}_"))
        elif isinstance(value, bool | int | float):
            flat[name] = float(value)
        elif key.startswith("ci") and isinstance(value, list | tuple) and len(value) == 2:
            flat.update({f"{name}_low": float(value[0]), f"{name}_high": float(value[1])})
    return flat


def _classify(engine: Engine, images: torch.Tensor, network: nn.Module) -> torch.Tensor:
    """The class probabilities of ``network`` (the engine's classifier, or the judge) for ``images``, on the
    engine's fast path when it has one, in eval mode."""
    from monai.networks import eval_mode

    fast_path = getattr(engine, "fast_path", None)
    with torch.no_grad(), eval_mode(network):
        logits = (
            network(images)
            if fast_path is None
            else fast_path.forward(network, fast_path.prepare_input(images))
        )
    return torch.softmax(logits.float(), dim=1).cpu()


class CounterfactualReportHandler(ReportHandler):
    """Collects a :class:`~monai_xai.engines.CounterfactualEvaluator` pass and writes its report.

    Per image (the first ``n_panels``, all when ``None``): a PNG panel (input, attention, A*G, translation,
    difference, Grad-CAM++), and for 3D the volumes as NIfTI. At the end: ``metrics.json`` (classifier
    metrics, confusion matrices before/after translation; flip rates overall and per source class
    (``flip_rate_from_0``, ``flip_rate_from_1``); the same for two controls, the translations ``G(x)`` let
    through another image's attention map (``control_flip_rate*``) or a uniform map of the same mean
    (``uniform_flip_rate*``), which flip less when the attention picks the region that matters; mean
    attention and mean ``|M(x) - x|``; attention vs Grad-CAM++ correlation and top-k IoU; agreement with
    expert masks when the items carry them; ``flip_rate_intervals``, every flip rate above with its 95 %
    bootstrap interval (``{"mean", "ci95", "n"}``, :func:`~monai_xai.metrics.counterfactual.flip_interval`;
    ``n_boot`` resamples seeded by ``seed``, as every interval here);
    ``control_gaps``, per control and direction the translations' flip rate minus the control's with the
    paired bootstrap interval of that difference, and ``controls_met``, true only when every such interval
    lies above zero; ``classifier`` records the explained classifier's ``architecture`` (and its scores
    when the items have labels). With a ``judge``, a classifier trained apart that no GAN trained against
    (the bundle's: another architecture, ``train_judge.json``), the same translations and both controls
    judged by it: ``judge`` (its ``architecture``), ``judge_flip_rate*`` overall and per source class,
    ``judge_control_flip_rate*``, ``judge_uniform_flip_rate*``, among the images it classifies correctly
    (``judge_flip_rate_correct_only``), their intervals (``judge_flip_rate_intervals``), the judge's
    ``judge_control_gaps`` and ``judge_controls_met``, and its own scores (``judge_classifier``), so that
    flips that fool only the classifier the GAN was trained against show up as a gap; and, when the judge
    ends in a linear layer, the realism of the translations in its penultimate feature space:
    ``judge_kid_from_<c>``, the kernel inception distance (``{"mean", "ci95", ...}``,
    :func:`~monai_xai.metrics.realism.kernel_inception_distance`) between the translations of class ``c``
    and the real images of the target class (their label, else their source class), beside
    ``judge_kid_untranslated_from_<c>``, the same for the images before translation: a translation that
    looks like the target class lies closer to it than the image it came from), ``predictions.json`` (per
    image; with a judge also ``judge_flipped`` and ``judge_flipped_<control>``), ``examples.json`` with
    ``panels_{best,worst}_from_{0,1}.png`` (the ``n_examples`` translations of each direction that flip
    the classifier with the largest change of the target probability, and those that fail with the
    smallest), confusion-matrix figures, an overview grid; all logged to the MLflow run ``run_name`` when
    ``tracking_uri`` and ``run_name`` are given.

    Memory stays bounded by a few batches: every map measure is reduced to one value per image as the
    batches come, the example buffers keep ``n_examples`` images each, and the controls are classified by
    the engine's ``network`` (and the judge) batch by batch; the judge's penultimate features (one vector
    per image and per translation) are kept for the realism figure. The shuffled control needs maps of
    other images: each batch takes them from itself and the previous batch
    (:func:`~monai_xai.metrics.shuffled_maps`, a seeded random cyclic order over both), so one batch of maps
    is carried, not the whole set. A first batch of a single image waits for the next batch; a pass of a
    single image has no shuffled control (NaN).

    The figures are computed by :mod:`monai_xai.metrics.counterfactual` (``flip_rates``,
    ``flip_rate_summary``, ``translation_kid``, ...); this handler collects their inputs batch by batch and
    writes them.

    Args:
        output_dir: folder of the report.
        class_names: names of class 0 and class 1.
        n_panels: images that get a panel (and NIfTI volumes in 3D); every image when None.
        n_overview: images of the overview grid.
        topk_fraction: share of pixels compared by the attention vs Grad-CAM++ top-k IoU.
        split_name: name of the evaluated split, put before the logged metric names.
        n_examples: best and worst translations kept per direction.
        controls: whether to classify the shuffled and uniform controls.
        seed: seed of the shuffled control's order and of every bootstrap interval.
        judge: an independently trained classifier that judges the same translations, or None.
        n_boot: bootstrap resamples of every interval.
        tracking_uri: MLflow tracking URI.
        experiment_name: MLflow experiment of the run.
        run_name: MLflow run the report is logged to; nothing is logged without it.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        n_panels: int | None = None,
        n_overview: int = 8,
        topk_fraction: float = 0.1,
        split_name: str = "test",
        n_examples: int = 4,
        controls: bool = True,
        seed: int = 0,
        judge: nn.Module | None = None,
        n_boot: int = 2000,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
    ) -> None:
        super().__init__(output_dir, tracking_uri, experiment_name, run_name)
        self.class_names = list(class_names)
        self.n_panels, self.n_overview, self.topk_fraction = n_panels, n_overview, topk_fraction
        self.split_name, self.n_examples, self.controls, self.seed = split_name, n_examples, controls, seed
        self.judge, self.n_boot = judge, n_boot

    def reset(self, engine: Engine | None = None) -> None:
        from monai_xai.metrics.realism import last_linear

        network = getattr(engine, "network", None)
        self.architectures = {} if network is None else {"classifier": _architecture(network)}
        if self.judge is not None:
            self.architectures["judge"] = _architecture(self.judge)
        self._realism = self.judge is not None and last_linear(self.judge) is not None
        self.records: dict[str, list] = {}
        self.overview: dict[str, list] = {}
        self.panels: list[str] = []
        self.examples: dict[str, list[dict]] = {}
        self._carry: torch.Tensor | None = None
        self._held: dict[str, torch.Tensor] | None = None
        self._generator = torch.Generator().manual_seed(self.seed)

    def _add(self, key: str, value) -> None:
        self.records.setdefault(key, []).append(value)

    def collect(self, engine: Engine) -> None:
        from monai_xai.metrics import (
            agreement_scores,
            map_correlation,
            map_mean,
            mean_abs_difference,
            target_probability_change,
            topk_iou,
        )

        out = engine.state.output
        probs = {key: torch.softmax(out[key].detach().float(), dim=1).cpu() for key in ("pred", "pred_after")}
        for key, value in probs.items():
            self._add(key, value)
        for key in ("source_class", "target_class", "label"):
            if key in out:
                self._add(key, out[key].detach().view(-1).cpu())
        image, attention, generated, fake = (
            out[k].detach().float() for k in ("image", "attention", "generated", "fake")
        )
        self._add("attention_mean", map_mean(attention).cpu())
        self._add("abs_difference", mean_abs_difference(fake, image).cpu())
        cam = out["cam"].detach().float() if "cam" in out else None
        if cam is not None:
            self._add("cam_correlation", map_correlation(attention, cam).cpu())
            self._add("cam_topk_iou", topk_iou(attention, cam, self.topk_fraction).cpu())
        if "mask" in out:
            mask = out["mask"].detach().float()
            for name, maps in (("attention", attention), ("gradcampp", cam)):
                if maps is not None:
                    for key, value in agreement_scores(maps, mask).items():
                        self._add(f"mask_{name}.{key}", value.cpu())
        if self.controls:
            self._collect_controls(engine, {"image": image, "generated": generated, "attention": attention})
        if self.judge is not None:
            for suffix, images in (("", image), ("_after", fake)):
                judged, features = self._judged(engine, images)
                self._add(f"judge_pred{suffix}", judged)
                if features is not None:
                    self._add(f"judge_features{suffix}", features)
        target = out["target_class"].detach().view(-1).cpu()
        change = target_probability_change(probs["pred"], probs["pred_after"], target)
        self._collect_examples(out, change, probs, target)
        self.records.setdefault("name", []).extend(out["name"])
        self._write_panels(out)

    def _collect_controls(self, engine: Engine, batch: dict[str, torch.Tensor]) -> None:
        """Classify the batch's translations with a uniform map, and with shuffled maps once the batch has
        another image's map to take (class docstring)."""
        from monai_xai.metrics import uniform_maps

        self._add_control("uniform", self._classify_with(engine, batch, uniform_maps(batch["attention"])))
        if self._held is not None:  # a first batch of one image: its partner has come
            held, self._held = self._held, None
            self._add_shuffled(engine, held, carry=batch["attention"])
            self._carry = held["attention"]
        if self._carry is None and len(batch["attention"]) < 2:
            self._held = batch
            return
        self._add_shuffled(engine, batch, self._carry)
        self._carry = batch["attention"]

    def _add_shuffled(
        self, engine: Engine, batch: dict[str, torch.Tensor], carry: torch.Tensor | None
    ) -> None:
        from monai_xai.metrics import shuffled_maps

        maps = shuffled_maps(batch["attention"], carry, self._generator)
        self._add_control("control", self._classify_with(engine, batch, maps))

    def _add_control(self, name: str, probs: dict[str, torch.Tensor]) -> None:
        for key, value in probs.items():
            self._add(f"{key}_{name}", value)

    def _classify_with(
        self, engine: Engine, batch: dict[str, torch.Tensor], attention: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Class probabilities of the batch's translations let through ``attention`` instead of their own:
        the classifier's (``pred``) and the judge's (``judge_pred``)."""
        from monai_xai.metrics import masked_translation

        translations = masked_translation(batch["image"], batch["generated"], attention)
        probs = {"pred": _classify(engine, translations, engine.network)}
        if self.judge is not None:
            probs["judge_pred"] = _classify(engine, translations, self.judge)
        return probs

    def _judged(self, engine: Engine, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The judge's class probabilities of ``images`` and, when it ends in a linear layer, its
        penultimate features (else None)."""
        from monai_xai.metrics.realism import capture_penultimate

        if not self._realism:
            return _classify(engine, images, self.judge), None
        with capture_penultimate(self.judge) as features:
            probs = _classify(engine, images, self.judge)
        return probs, features[-1]

    def _collect_examples(self, out: dict, change: torch.Tensor, probs: dict, target: torch.Tensor) -> None:
        """Keep the ``n_examples`` best and worst translations per direction seen so far."""
        from monai_xai.metrics import extreme_examples

        source = out["source_class"].detach().view(-1).cpu()
        flipped = probs["pred_after"].argmax(1) == target
        for cls in (0, 1):
            rows = (source == cls).nonzero().view(-1)
            for kind, picked in extreme_examples(change[rows], flipped[rows], self.n_examples).items():
                new = [
                    {
                        "name": out["name"][i],
                        "source_class": cls,
                        "target_class": int(target[i]),
                        "prob_target_before": float(probs["pred"][i, target[i]]),
                        "prob_target_after": float(probs["pred_after"][i, target[i]]),
                        "change": float(change[i]),
                        "flipped": bool(flipped[i]),
                        **{k: out[k][i].detach().float().cpu() for k in ("image", "attention", "fake")},
                    }
                    for i in rows[picked].tolist()
                ]
                pool = self.examples.get(f"{kind}_from_{cls}", []) + new
                keep = extreme_examples(
                    [e["change"] for e in pool], [e["flipped"] for e in pool], self.n_examples
                )
                self.examples[f"{kind}_from_{cls}"] = [pool[i] for i in keep[kind].tolist()]

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

    def _concatenated(self) -> dict[str, torch.Tensor]:
        """Every per-image record as one tensor; control predictions of images still waiting are NaN."""
        cat = {k: torch.cat(v) for k, v in self.records.items() if k != "name"}
        n, classes = cat["pred"].shape
        judges = ("", "judge_") if self.judge is not None else ("",)
        for key in (f"{judge}pred_{name}" for judge in judges for name in CONTROLS if self.controls):
            done = cat.get(key, torch.empty(0, classes))
            cat[key] = torch.cat([done, torch.full((n - len(done), classes), float("nan"))])
        return cat

    def compute(self) -> dict:
        """The metrics of everything collected so far."""
        from monai_xai.metrics import summarize_agreement
        from monai_xai.metrics.counterfactual import (
            before_after_confusion,
            direction_rows,
            flip_rate,
            flip_rate_correct_only,
            flip_rate_summary,
            flip_rates,
            translation_kid,
        )

        cat = self._concatenated()
        pred_before, pred_after = cat["pred"].argmax(1), cat["pred_after"].argmax(1)
        source, target = cat["source_class"], cat["target_class"]
        judges = ("", "judge_") if "judge_pred_after" in cat else ("",)
        metrics: dict = {"n_images": int(len(pred_before))}
        for cls, name in enumerate(self.class_names):  # the names of earlier reports
            from_cls = source == cls
            metrics[f"flip_rate_from_{name}"] = flip_rate(pred_after[from_cls], target[from_cls])
        iou_key = f"top{round(100 * self.topk_fraction)}pct_iou"
        directions = direction_rows(source)
        translations = {"": "pred_after", "judge_": "judge_pred_after"} | {
            f"{judge}{name}_": f"{judge}pred_{name}" for judge in ("", "judge_") for name in CONTROLS
        }
        rates = {  # per key prefix: flip_rate<direction> of the classifier's or judge's probabilities
            prefix: flip_rates(cat[key], target, source) for prefix, key in translations.items() if key in cat
        }
        for suffix, rows in directions.items():
            if suffix:
                metrics[f"n_images{suffix}"] = int(rows.sum())
            metrics.update(
                {
                    f"{prefix}flip_rate{suffix}": values[f"flip_rate{suffix}"]
                    for prefix, values in rates.items()
                }
            )
            metrics[f"mean_attention{suffix}"] = _mean(cat["attention_mean"][rows])
            metrics[f"mean_abs_difference{suffix}"] = _mean(cat["abs_difference"][rows])
            if "cam_correlation" in cat:
                metrics[f"attention_vs_gradcampp{suffix}"] = {
                    "correlation": _mean(cat["cam_correlation"][rows]),
                    iou_key: _mean(cat["cam_topk_iou"][rows]),
                }
        if "classifier" in self.architectures:
            metrics["classifier"] = {"architecture": self.architectures["classifier"]}
        if "label" in cat:
            metrics.setdefault("classifier", {}).update(self._scores(cat["label"], cat["pred"]))
            confusion = before_after_confusion(cat["label"], pred_before, pred_after, len(self.class_names))
            metrics["confusion_before"] = confusion["before"].tolist()
            metrics["confusion_after"] = confusion["after"].tolist()
            metrics["flip_rate_correct_only"] = flip_rate_correct_only(
                cat["pred"], cat["pred_after"], cat["label"], target
            )
            if "judge_pred" in cat:
                metrics["judge_classifier"] = self._scores(cat["label"], cat["judge_pred"])
                metrics["judge_flip_rate_correct_only"] = flip_rate_correct_only(
                    cat["judge_pred"], cat["judge_pred_after"], cat["label"], target
                )
        if "mask_attention.has_mask" in cat and bool(cat["mask_attention.has_mask"].any()):
            metrics["mask_agreement"] = {
                name: summarize_agreement(
                    {k.split(".", 1)[1]: v for k, v in cat.items() if k.startswith(f"mask_{name}.")}
                )
                for name in ("attention", "gradcampp")
                if f"mask_{name}.has_mask" in cat
            }
        for judge in judges:
            metrics.update(
                flip_rate_summary(
                    cat[f"{judge}pred_after"],
                    {name: cat[f"{judge}pred_{name}"] for name in CONTROLS if f"{judge}pred_{name}" in cat},
                    target,
                    source,
                    correct=cat[f"{judge}pred"].argmax(1) == cat["label"] if "label" in cat else None,
                    prefix=judge,
                    n_boot=self.n_boot,
                    seed=self.seed,
                )
            )
        if "judge" in self.architectures:
            metrics["judge"] = {"architecture": self.architectures["judge"]}
        if "judge_features" in cat:
            metrics.update(
                translation_kid(
                    cat["judge_features"],
                    cat["judge_features_after"],
                    cat.get("label", source),
                    source,
                    seed=self.seed,
                )
            )
        return metrics

    def _scores(self, labels: torch.Tensor, probs: torch.Tensor) -> dict[str, float]:
        """A classifier's accuracy, AUC, sensitivity, ... on the real images."""
        from monai_xai.metrics import classification_metrics

        scores = classification_metrics(labels.numpy(), probs.numpy(), len(self.class_names))
        return {k: float(v) for k, v in scores.items() if k != "confusion_matrix"}

    def write(self, engine: Engine | None = None) -> dict:
        from monai_xai.visualize import confusion_matrix_figure, save_figure
        from monai_xai.visualize.counterfactual import counterfactual_figure

        metrics = self.compute()
        self.save_json("metrics.json", metrics)
        self.save_json("predictions.json", self._predictions())
        examples = self._write_examples()
        self.save_json("examples.json", examples)
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
        panels = [self.output_dir / e["panel"] for e in examples.values() if e["panel"]]
        self._log(metrics, panels)
        return metrics

    def _predictions(self) -> list[dict]:
        """Per image: classes, target probability before/after translation and under each control."""
        cat = self._concatenated()
        predictions = []
        for i, name in enumerate(self.records["name"]):
            tgt = int(cat["target_class"][i])
            record = {
                "source": name,
                "source_class": self.class_names[int(cat["source_class"][i])],
                "target_class": self.class_names[tgt],
                "prob_target_before": float(cat["pred"][i, tgt]),
                "prob_target_after": float(cat["pred_after"][i, tgt]),
                "flipped": bool(cat["pred_after"][i].argmax() == tgt),
                "mean_attention": float(cat["attention_mean"][i]),
                "mean_abs_difference": float(cat["abs_difference"][i]),
            }
            for control in CONTROLS:
                if f"pred_{control}" in cat:
                    probs = cat[f"pred_{control}"][i]
                    record[f"prob_target_{control}"] = float(probs[tgt])
                    record[f"flipped_{control}"] = (
                        None if bool(probs.isnan().any()) else bool(probs.argmax() == tgt)
                    )
            if "judge_pred_after" in cat:
                record["judge_flipped"] = bool(cat["judge_pred_after"][i].argmax() == tgt)
                for control in CONTROLS:
                    if f"judge_pred_{control}" in cat:
                        probs = cat[f"judge_pred_{control}"][i]
                        record[f"judge_flipped_{control}"] = (
                            None if bool(probs.isnan().any()) else bool(probs.argmax() == tgt)
                        )
            record["panel"] = self.panels[i] if i < len(self.panels) else None
            predictions.append(record)
        return predictions

    def _write_examples(self) -> dict:
        """``panels_<kind>_from_<class>.png`` of the kept examples; what they show, by panel."""
        from monai_xai.visualize import counterfactual_examples_figure, save_figure

        written = {}
        for key, examples in sorted(self.examples.items()):
            panel = None
            if examples:
                titles = [
                    f"{_safe_name(e['name'])[-18:]}\n{self.class_names[e['source_class']]} -> "
                    f"{self.class_names[e['target_class']]}: p {e['prob_target_before']:.2f} -> "
                    f"{e['prob_target_after']:.2f}"
                    for e in examples
                ]
                fig = counterfactual_examples_figure(
                    *([e[k] for e in examples] for k in ("image", "attention", "fake")), titles=titles
                )
                panel = save_figure(fig, self.output_dir / f"panels_{key}.png").name
            written[key] = {
                "panel": panel,
                "examples": [
                    {k: v for k, v in e.items() if not isinstance(v, torch.Tensor)} for e in examples
                ],
            }
        return written

    def _log(self, metrics: dict, panels: Sequence[Path]) -> None:
        self.log(
            {f"{self.split_name}_{k}": v for k, v in _numbers(metrics).items()},
            [self.output_dir / "figures", self.output_dir / "metrics.json", self.output_dir / "examples.json"]
            + list(panels),
            f"counterfactual_{self.split_name}",
        )
