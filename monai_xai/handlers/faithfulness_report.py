"""Deletion and Insertion scores of each explanation method over an evaluation pass."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from ignite.engine import Engine

from monai_xai.engines.outputs import ATTENTION_MAP
from monai_xai.handlers.base import ReportHandler
from monai_xai.utils import batch_strings

__all__ = ["FaithfulnessReportHandler"]

#: Name under which the network's own attention map is scored.
OWN_MAP = "attention"
#: Columns of ``faithfulness_per_image.csv``: one row per image and method, in evaluation order.
PER_IMAGE_COLUMNS = ("source", "method", "deletion_auc", "insertion_auc")
#: Bootstrap resamples of the intervals in ``faithfulness.json``.
N_BOOT = 2000


def _plain(value):
    """A MetaTensor as a plain tensor: slicing a batched MetaTensor re-collates its metadata (or fails)."""
    return value.as_tensor() if hasattr(value, "as_tensor") else value


class FaithfulnessReportHandler(ReportHandler):
    """Evaluator handler: Deletion and Insertion AUCs per method, as ``faithfulness.json`` (means, sd and
    bootstrap 95 % intervals over the images), ``faithfulness_per_image.csv`` (one row per image and method,
    so that runs can be pooled and paired), a curve figure and MLflow metrics
    ``<split>_<method>_{deletion,insertion}_auc``.

    Args:
        network: the evaluated network (logits or an ABN output); scored on the predicted class.
        output_dir: where ``faithfulness.json`` and ``deletion_insertion.png`` go.
        methods: ``"attention"`` for the network's own map, and names of ``saliency_fns``.
        saliency_fns: ``name -> (images, class_idx) -> maps``, e.g. :class:`~monai_xai.visualize.CAMSaliency`.
        steps, baseline, batch_size: see :func:`~monai_xai.metrics.deletion_insertion`.
        max_images: score at most this many images (Deletion/Insertion costs 2 * (steps + 1) forwards each).
        split_name: name of the evaluated split, put before the logged metric names.
        tracking_uri: MLflow tracking URI.
        experiment_name: MLflow experiment of the run.
        run_name: MLflow run the figures are logged to; nothing is logged without it.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        output_dir: str | os.PathLike,
        methods: Sequence[str] = (OWN_MAP,),
        saliency_fns: dict[str, Callable] | None = None,
        steps: int = 20,
        baseline: str = "blur",
        batch_size: int | None = 64,
        max_images: int | None = None,
        split_name: str = "test",
        tracking_uri: str | None = None,
        experiment_name: str = "monai_xai",
        run_name: str | None = None,
    ) -> None:
        super().__init__(output_dir, tracking_uri, experiment_name, run_name)
        self.network = network
        self.saliency_fns = dict(saliency_fns or {})
        unknown = [m for m in methods if m != OWN_MAP and m not in self.saliency_fns]
        if unknown:
            raise ValueError(
                f"methods {unknown} have no saliency function; known: {[OWN_MAP, *self.saliency_fns]}"
            )
        self.methods = list(methods)
        self.steps, self.baseline, self.batch_size = steps, baseline, batch_size
        self.max_images = max_images
        self.split_name = split_name
        self.results: dict = {}

    def reset(self, engine: Engine) -> None:
        self._curves: dict[str, dict[str, list[torch.Tensor]]] = {
            m: {"deletion": [], "insertion": []} for m in self.methods
        }
        self._seen = 0
        self._sources: list[str] = []
        self._scorer: torch.nn.Module | None = None

    def _build_scorer(self, output: dict, example: torch.Tensor) -> torch.nn.Module:
        """The network's prediction logits, through a CPU-optimised copy built once per evaluation pass."""
        from monai_xai.networks import InferenceTolerance, PerceptionLogits, optimise_for_inference

        logits = PerceptionLogits(self.network) if ATTENTION_MAP in output else self.network
        return optimise_for_inference(logits, example, InferenceTolerance.exact())

    def collect(self, engine: Engine) -> None:
        from monai_xai.metrics import deletion_insertion

        if self.max_images is not None and self._seen >= self.max_images:
            return
        out = {k: _plain(v) for k, v in engine.state.output.items()}
        images = out["image"]
        keep = len(images) if self.max_images is None else min(len(images), self.max_images - self._seen)
        images, predicted = images[:keep], out["pred"][:keep].argmax(dim=1)
        self._seen += keep
        batch = engine.state.batch if isinstance(engine.state.batch, Mapping) else {}
        self._sources += batch_strings(batch, "source", len(out["image"]))[:keep]
        was_training = self.network.training
        self.network.eval()
        if self._scorer is None:
            self._scorer = self._build_scorer(out, images[:2])
        for method in self.methods:
            if method == OWN_MAP:
                if ATTENTION_MAP not in out:
                    raise ValueError("method 'attention' needs a network with an attention map (an ABN)")
                maps = out[ATTENTION_MAP][:keep].detach()
            else:
                maps = _plain(self.saliency_fns[method](images, predicted)).detach()
            for mode in ("deletion", "insertion"):
                result = deletion_insertion(
                    self._scorer, images, maps, mode, self.steps, self.baseline, predicted, self.batch_size
                )
                self._curves[method][mode].append(result.curves.cpu())
        self.network.train(was_training)

    def write(self, engine: Engine) -> None:
        from monai_xai.metrics import bootstrap_ci, mean_of
        from monai_xai.visualize import deletion_insertion_figure, save_figure

        report: dict = {"steps": self.steps, "baseline": self.baseline, "n_images": self._seen}
        mean_curves: dict[str, dict[str, np.ndarray]] = {}
        per_image: dict[str, dict[str, np.ndarray]] = {}
        for method, by_mode in self._curves.items():
            report[method] = {}
            mean_curves[method] = {}
            for mode, curves in by_mode.items():
                if not curves:
                    continue
                stacked = torch.cat(curves)
                auc = torch.trapezoid(stacked, dx=1.0 / self.steps, dim=1).double().numpy()
                per_image.setdefault(method, {})[f"{mode}_auc"] = auc
                report[method][f"{mode}_auc"] = float(auc.mean())
                report[method][f"{mode}_auc_sd"] = float(auc.std(ddof=1)) if len(auc) > 1 else 0.0
                interval = bootstrap_ci(mean_of, auc, n_boot=N_BOOT)
                report[method][f"{mode}_auc_ci95"] = [interval.low, interval.high]
                mean_curves[method][mode] = stacked.mean(0).numpy()
        assert len(self._sources) == self._seen, "one source per scored image"
        rows = [
            {"source": source, "method": method, **{k: f"{v[i]:.6f}" for k, v in scores.items()}}
            for method, scores in per_image.items()
            for i, source in enumerate(self._sources)
        ]
        self.save_csv("faithfulness_per_image.csv", PER_IMAGE_COLUMNS, rows)
        path = self.save_json("faithfulness.json", report)
        figure = save_figure(
            deletion_insertion_figure(mean_curves), self.output_dir / "deletion_insertion.png"
        )
        self.results = report
        metrics = {
            f"{self.split_name}_{method}_{key}": value
            for method in self.methods
            for key, value in report[method].items()
            if not key.endswith(("_sd", "_ci95"))
        }
        self.log(metrics, [path, figure], self.split_name)
