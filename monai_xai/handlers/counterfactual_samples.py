"""Sample grids of a CycleGAN's translations during training, saved and logged to MLflow each epoch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from monai_xai.handlers.base import ReportHandler

__all__ = ["CounterfactualSamplesHandler"]


class CounterfactualSamplesHandler(ReportHandler):
    """Every ``interval`` epochs, panels of the last batch's translations in both directions.

    Reads ``x``, ``y`` (in [-1, 1]) and the ``x_to_y``/``y_to_x`` translations from the output of an
    :class:`~monai_xai.engines.AGCycleGANTrainer`; writes ``<output_dir>/samples_epochNNN.png`` and logs it to
    the MLflow run ``run_name`` when ``tracking_uri`` and ``run_name`` are given.

    Args:
        output_dir: folder of the sample grids.
        class_names: names of class 0 (``x``) and class 1 (``y``) in the titles.
        n_images: images per direction.
        interval: epochs between two grids.
        tracking_uri: MLflow tracking URI.
        experiment_name: MLflow experiment of the run.
        run_name: MLflow run the grids are logged to.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str] = ("class 0", "class 1"),
        n_images: int = 4,
        interval: int = 1,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
    ) -> None:
        super().__init__(output_dir, tracking_uri, experiment_name, run_name)
        self.class_names, self.n_images, self.interval = list(class_names), n_images, interval

    def attach(self, engine: Engine) -> None:
        """Register :meth:`write` every ``interval`` epochs of ``engine`` (a trainer)."""
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self.write)

    def write(self, engine: Engine) -> Path:
        from monai_xai.networks.nets.agcyclegan import to_classifier_range
        from monai_xai.visualize import save_figure
        from monai_xai.visualize.counterfactual import counterfactual_figure

        out = engine.state.output
        rows: dict[str, list[torch.Tensor]] = {"image": [], "attention": [], "generated": [], "fake": []}
        titles = []
        for real, key, (src, tgt) in (("x", "x_to_y", (0, 1)), ("y", "y_to_x", (1, 0))):
            translation = out[key]
            n = min(self.n_images, len(out[real]))
            rows["image"] += list(to_classifier_range(out[real][:n]).cpu())
            rows["attention"] += list(translation.attention[:n].float().cpu())
            rows["generated"] += list(to_classifier_range(translation.generated[:n]).float().cpu())
            rows["fake"] += list(to_classifier_range(translation.fake[:n]).float().cpu())
            titles += [f"{self.class_names[src]} -> {self.class_names[tgt]}"] * n
        fig = counterfactual_figure(
            rows["image"], rows["attention"], rows["generated"], rows["fake"], titles=titles
        )
        path = save_figure(fig, self.output_dir / f"samples_epoch{engine.state.epoch:03d}.png")
        self.log(artifacts=[path], artifact_path="samples")
        return path
