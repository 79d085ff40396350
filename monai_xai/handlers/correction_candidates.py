"""Collect the samples whose attention an expert should correct, with their current maps written out.

As in the expert-correction study: after training, run the model over the training set and list the images
it misclassifies and those it classifies correctly while its map misses the lesion (little of the map's
energy inside the reference mask). Every sample's probabilities and map error also go to ``records.csv``,
which the active-learning strategies rank.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine

from monai_xai.engines.outputs import ATTENTION_MAP, HAS_MASK, MASK
from monai_xai.handlers.base import ReportHandler
from monai_xai.utils import atomic_path, batch_strings, upsample_attention

__all__ = ["CorrectionCandidatesHandler", "save_map"]


def save_map(attention_map: torch.Tensor | np.ndarray, stem: str | os.PathLike) -> Path:
    """Write a (1, *spatial) or (*spatial) map in [0, 1] atomically to ``<stem>.png`` (2D, 8-bit) or
    ``<stem>.nii.gz`` (3D, float32); returns the path written."""
    array = np.asarray(torch.as_tensor(attention_map).detach().float().cpu().numpy(), dtype=np.float32)
    if array.ndim in (3, 4) and array.shape[0] == 1:
        array = array[0]
    array = np.clip(array, 0.0, 1.0)
    suffix = {2: ".png", 3: ".nii.gz"}.get(array.ndim)
    if suffix is None:
        raise ValueError(f"a map must be 2D or 3D, got shape {array.shape}")
    path = Path(f"{os.fspath(stem)}{suffix}")
    with atomic_path(path) as tmp:
        if array.ndim == 2:
            from PIL import Image

            Image.fromarray(np.round(array * 255).astype(np.uint8)).save(tmp, format="PNG")
        else:
            import nibabel as nib

            nib.save(nib.Nifti1Image(array, np.eye(4)), tmp)
    return path


class CorrectionCandidatesHandler(ReportHandler):
    """Evaluator handler: ``records.csv`` for every sample, ``candidates.csv`` and maps for those to correct.

    Args:
        output_dir: where ``records.csv``, ``candidates.csv`` and ``maps/`` go.
        class_names: names of the classes, for the ``prob_<class>`` columns.
        energy_threshold: a correct prediction whose map puts less than this share of its energy inside the
            reference mask "misses the lesion".
        write_maps: write each candidate's current map (upsampled to the image) as ``maps/<n>_<name>.png``
            (``.nii.gz`` in 3D) for the expert to edit.

    Samples without a reference mask get an empty map error and can only be candidates by misclassification.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        energy_threshold: float = 0.5,
        write_maps: bool = True,
    ) -> None:
        super().__init__(output_dir)
        self.class_names = list(class_names)
        self.energy_threshold = float(energy_threshold)
        self.write_maps = write_maps
        self.rows: list[dict] = []

    def reset(self, engine: Engine) -> None:
        self.rows = []

    def collect(self, engine: Engine) -> None:
        from monai_xai.metrics import energy_inside_mask, map_mse

        out = engine.state.output
        if ATTENTION_MAP not in out:
            raise ValueError("CorrectionCandidatesHandler needs a network with an attention map (an ABN)")
        probs = torch.softmax(out["pred"].detach().float(), dim=1).cpu()
        n = len(probs)
        labels = out["label"].cpu().view(-1) if "label" in out else torch.full((n,), -1)
        maps = upsample_attention(out[ATTENTION_MAP].detach().float(), out["image"].shape[2:]).cpu()
        has_mask = torch.zeros(n, dtype=torch.bool)
        mse = energy = torch.full((n,), float("nan"))
        if MASK in out:
            masks = out[MASK].detach().float().cpu()
            has_mask = (
                out[HAS_MASK].cpu().view(-1).bool() if HAS_MASK in out else torch.ones(n, dtype=torch.bool)
            )
            mse = torch.where(has_mask, map_mse(maps, masks), mse)
            energy = torch.where(has_mask, energy_inside_mask(maps, masks), energy)
        sources = batch_strings(engine.state.batch, "source", n)
        for i in range(n):
            pred = int(probs[i].argmax())
            reason = ""
            if labels[i] >= 0 and pred != int(labels[i]):
                reason = "misclassified"
            elif bool(has_mask[i]) and float(energy[i]) < self.energy_threshold:
                reason = "map_misses_lesion"
            row = {
                "source": sources[i] or f"sample{len(self.rows):05d}",
                "label": int(labels[i]),
                "pred": pred,
                **{f"prob_{c}": round(float(p), 5) for c, p in zip(self.class_names, probs[i])},
                "map_mse": "" if torch.isnan(mse[i]) else round(float(mse[i]), 6),
                "energy_inside_mask": "" if torch.isnan(energy[i]) else round(float(energy[i]), 4),
                "reason": reason,
                "map": "",
            }
            if reason and self.write_maps:
                stem = f"{len(self.rows):05d}_{Path(row['source']).name.split('.')[0]}"
                row["map"] = str(save_map(maps[i], self.output_dir / "maps" / stem))
            self.rows.append(row)

    def write(self, engine: Engine) -> None:
        columns = list(self.rows[0]) if self.rows else ["source"]
        self.save_csv("records.csv", columns, self.rows)
        self.save_csv("candidates.csv", columns, [r for r in self.rows if r["reason"]])
