"""What the attention editor serves: a trained ABN, the samples to correct, and the saving of corrected maps.

Kept free of any web framework so the logic can be tested and reused on its own. The network must accept an
external map (``network(x, attention_map=m)``, as :class:`~monai_xai.networks.AttentionBranchNetwork` and
:class:`~monai_xai.networks.MultiScaleAttentionBranchNetwork` do): that gives the prediction under the
expert's map. A saved map is binarised at 0.5 and brought back to the image file's own size by inverting
the bundle's preprocessing, because the fine-tuning reads it in place of a lesion mask, with the mask
transforms: they binarise it and require it to have the size of the image file.
"""

from __future__ import annotations

import functools
import inspect
import io
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Invertd
from monai.utils import convert_to_tensor, look_up_option
from PIL import Image, UnidentifiedImageError
from torch import nn

from monai_xai.active_learning import STRATEGIES, SampleRecords, get_strategy
from monai_xai.data.corrections import item_id
from monai_xai.editor.datalist import CorrectionTable
from monai_xai.errors import InputError
from monai_xai.handlers.correction_candidates import save_map
from monai_xai.metrics import map_mse
from monai_xai.transforms import LoadImageOrArrayd
from monai_xai.utils import upsample_attention

__all__ = ["ORDERS", "SPLITS", "EditorSession", "RequestError", "encode_png", "load_session"]

logger = logging.getLogger(__name__)

#: Orders the sample list can be sorted by: the datalist's own, or an active-learning strategy's.
ORDERS = ("datalist", *STRATEGIES)
#: Largest upload accepted; an 8-bit PNG of a 1024x1024 map is at most about 1 MB.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024


class RequestError(ValueError):
    """A request the editor cannot serve; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def encode_png(array: np.ndarray | torch.Tensor) -> bytes:
    """An 8-bit PNG of a (H, W) or (C, H, W) array in [0, 1] (1 channel: grey, 3: RGB, else the first)."""
    values = np.asarray(torch.as_tensor(array).detach().float().cpu().numpy(), dtype=np.float32)
    if values.ndim == 3:
        values = np.moveaxis(values, 0, -1) if values.shape[0] == 3 else values[0]
    pixels = np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _rounded(values: Sequence[float], digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


class EditorSession:
    """Scores every sample once, then serves predictions under edited maps and saves corrected maps.

    Args:
        network: a trained 2D attention branch network (its weights loaded).
        preprocessing: the bundle's evaluation transforms (``validate#preprocessing``): load, check, resize.
        datalist: the items to correct (``image``, ``label``, optionally ``mask``).
        table: where corrected maps are recorded (the new datalist CSV).
        class_names: names of the classes, for display.
        device: where the network runs.
        batch_size: images per forward pass while scoring.
        seed: seed of the ``random`` order.
    """

    def __init__(
        self,
        network: nn.Module,
        preprocessing: Callable[[dict], Mapping],
        datalist: Sequence[dict],
        table: CorrectionTable,
        class_names: Sequence[str],
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        seed: int = 0,
    ) -> None:
        if not datalist:
            raise InputError(table.source_csv, "the datalist to correct is empty")
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.preprocessing = preprocessing
        self.items = [dict(item) for item in datalist]
        self.table = table
        self.class_names = list(class_names)
        self.seed = seed
        self.maps_dir = table.output_dir / "maps"
        self._lock = threading.Lock()
        self._prepared = functools.lru_cache(maxsize=16)(self._prepare)
        self._invert = Invertd(
            keys="edited", transform=preprocessing, orig_keys="image", nearest_interp=False
        )
        for item in self.items:
            table.row_index(item["image"])  # every item must have a row to write its map to
        self._check_invertible(0)
        self._score(batch_size)

    def __len__(self) -> int:
        return len(self.items)

    def _prepare(self, index: int) -> Mapping:
        return self.preprocessing(dict(self.items[index]))

    def _forward(self, images: torch.Tensor, attention_map: torch.Tensor | None = None):
        with self._lock, torch.inference_mode():
            if attention_map is None:
                return self.network(images.to(self.device))
            return self.network(images.to(self.device), attention_map=attention_map.to(self.device))

    def _score(self, batch_size: int) -> None:
        """Probabilities, own map and map error (vs the mask, where there is one) of every sample."""
        scored: list[tuple] = [()] * len(self.items)
        for start in range(0, len(self.items), batch_size):
            prepared = {i: self._prepare(i) for i in range(start, min(start + batch_size, len(self.items)))}
            by_shape: dict[tuple, list[int]] = {}  # images of one size go through the network together
            for i, data in prepared.items():
                by_shape.setdefault(tuple(data["image"].shape), []).append(i)
            for indices in by_shape.values():
                images = torch.stack(
                    [convert_to_tensor(prepared[i]["image"], track_meta=False) for i in indices]
                )
                out = self._forward(images)
                if not hasattr(out, "attention_map"):
                    raise InputError(
                        None,
                        f"{type(self.network).__name__} has no attention map to edit: load an attention "
                        "branch network (ABN bundle --mode plain, conventional or dynamic, or the "
                        "multi-scale ABN)",
                    )
                probs = torch.softmax(out.perception_logits.float(), dim=1).cpu().numpy()
                own = out.attention_map.float().cpu()
                full = upsample_attention(own, images.shape[2:])
                for k, i in enumerate(indices):
                    error = float("nan")
                    if int(prepared[i].get("has_mask", 0)):
                        error = float(map_mse(full[k : k + 1], prepared[i]["mask"][None].float())[0])
                    scored[i] = (probs[k], own[k], error, tuple(images.shape[2:]))
        probs, self.own_maps, errors, self.shapes = (list(column) for column in zip(*scored))
        self.probs = np.stack(probs)
        self.map_errors = np.array(errors, dtype=np.float64)

    def _check_invertible(self, index: int) -> None:
        """Refuse a preprocessing whose spatial steps cannot be undone: saved maps would not fit the image."""
        data = self._prepared(index)
        restored = self._restore(data, torch.zeros(data["image"].shape[1:]))
        loaded = self._loaded_shape(index)
        if tuple(restored.shape[1:]) != loaded:
            raise InputError(
                self.items[index]["image"],
                f"the preprocessing maps the image from size {loaded} to {tuple(data['image'].shape[1:])} "
                f"in a way that cannot be inverted (back to {tuple(restored.shape[1:])}), so an edited map "
                "could not be saved at the image's size; use a preset that only resizes (ultrasound, xray)",
            )

    def _restore(self, data: Mapping, edited: torch.Tensor) -> torch.Tensor:
        """``edited`` (H, W) at the network's input size, taken back to the image file's size."""
        inverted = self._invert({"image": data["image"], "edited": MetaTensor(edited[None].float())})
        return torch.as_tensor(inverted["edited"]).float()

    def _loaded_shape(self, index: int) -> tuple[int, ...]:
        image = LoadImageOrArrayd(keys="image")({"image": self.items[index]["image"]})["image"]
        return tuple(image.shape[1:])

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.items):
            raise RequestError(
                f"no sample {index}: there are {len(self.items)} (0 to {len(self.items) - 1})", 404
            )

    @property
    def has_masks(self) -> bool:
        """Whether any sample has a mask, i.e. whether ``largest_map_error`` can rank them."""
        return bool(np.isfinite(self.map_errors).any())

    def records(self) -> SampleRecords:
        """The samples as the active-learning strategies see them."""
        labels = [int(item.get("label", -1)) for item in self.items]
        return SampleRecords(
            ids=[item_id(item) for item in self.items],
            probs=self.probs,
            labels=labels,
            map_error=self.map_errors,
        )

    def order(self, name: str = "datalist") -> list[int]:
        """Sample indices in the datalist's order, or most useful to correct first by strategy ``name``."""
        checked = look_up_option(name, ORDERS, default=None)
        if checked is None:
            raise RequestError(f"unknown order {name!r}; valid orders: {', '.join(ORDERS)}")
        if checked == "datalist":
            return list(range(len(self.items)))
        kwargs = {"seed": self.seed} if checked == "random" else {}
        try:
            return [int(i) for i in get_strategy(checked, **kwargs).rank(self.records())]
        except ValueError as err:
            raise RequestError(f"cannot order by {name}: {err}") from None

    def prediction(self, probs: np.ndarray) -> dict:
        """Predicted class, its name and probability, and all class probabilities."""
        pred = int(np.argmax(probs))
        return {
            "pred": pred,
            "pred_name": self.class_names[pred] if pred < len(self.class_names) else str(pred),
            "confidence": round(float(probs[pred]), 4),
            "probs": _rounded(probs),
        }

    def summary(self, index: int) -> dict:
        """What the sample list shows: name, label, the model's own prediction, map error, saved or not."""
        self._check_index(index)
        item = self.items[index]
        label = item.get("label")
        error = self.map_errors[index]
        return {
            "index": index,
            "name": Path(item["image"]).name,
            "label": None if label is None else int(label),
            "label_name": None if label is None else self.class_names[int(label)],
            **self.prediction(self.probs[index]),
            "map_error": None if np.isnan(error) else round(float(error), 4),
            "corrected": self.table.corrected_map(item["image"]) is not None,
            "height": self.shapes[index][0],
            "width": self.shapes[index][1],
        }

    def image(self, index: int) -> torch.Tensor:
        """The preprocessed image (C, H, W) the network sees."""
        self._check_index(index)
        return convert_to_tensor(self._prepared(index)["image"], dtype=torch.float32, track_meta=False)

    def own_map(self, index: int) -> torch.Tensor:
        """The network's map M(x), upsampled to the image the network sees: (H, W) in [0, 1]."""
        self._check_index(index)
        return upsample_attention(self.own_maps[index][None], self.shapes[index])[0, 0]

    def corrected_map(self, index: int) -> torch.Tensor | None:
        """The saved map as the fine-tuning reads it (through the bundle's mask transforms), or None."""
        self._check_index(index)
        path = self.table.corrected_map(self.items[index]["image"])
        if path is None:
            return None
        data = self.preprocessing({**self.items[index], "mask": path})
        return torch.as_tensor(data["mask"]).float()[0]

    def decode_map(self, index: int, payload: bytes) -> torch.Tensor:
        """An uploaded map (a greyscale PNG the size of the sample's input) as (H, W) in [0, 1].

        The whole image is decoded here: a truncated or non-PNG upload is refused before anything is written.
        """
        self._check_index(index)
        if not payload:
            raise RequestError("empty upload: send the edited map as a PNG image")
        if len(payload) > MAX_UPLOAD_BYTES:
            raise RequestError(f"upload of {len(payload)} bytes exceeds the limit of {MAX_UPLOAD_BYTES}", 413)
        height, width = self.shapes[index]
        try:
            with Image.open(io.BytesIO(payload), formats=["PNG"]) as image:
                image.verify()  # every chunk's checksum, up to the end marker: cut or altered files fail
            with Image.open(io.BytesIO(payload), formats=["PNG"]) as image:
                if image.size != (width, height):
                    got = f"{image.size[0]}x{image.size[1]}"
                    raise RequestError(f"the map is {got} pixels, sample {index} needs {width}x{height}", 422)
                pixels = np.asarray(image.convert("L"), dtype=np.float32)
        except UnidentifiedImageError:
            raise RequestError("the upload is not a PNG image: send the edited map as a PNG") from None
        except (OSError, SyntaxError, Image.DecompressionBombError) as err:  # PIL: SyntaxError = bad chunk
            raise RequestError(f"the uploaded image cannot be decoded: {err}") from None
        return torch.from_numpy(pixels / 255.0)

    def predict(self, index: int, edited: torch.Tensor) -> dict:
        """The prediction with ``edited`` (H, W) in place of the network's own map."""
        self._check_index(index)
        image = self.image(index)[None]
        out = self._forward(image, attention_map=edited.float()[None, None])
        return self.prediction(torch.softmax(out.perception_logits.float(), dim=1)[0].cpu().numpy())

    def save(self, index: int, edited: torch.Tensor) -> dict:
        """Save ``edited`` (H, W) as the sample's corrected map and rewrite the datalist CSV.

        The map is brought back to the image file's size, binarised at 0.5 and written atomically as
        ``maps/<row>_<image name>.png``; the CSV then references it in its ``corrected_map`` column.
        """
        self._check_index(index)
        item = self.items[index]
        restored = self._restore(self._prepared(index), edited)
        binary = (restored >= 0.5).float()
        with self._lock:
            row = self.table.row_index(item["image"])
            stem = Path(item["image"]).name.split(".")[0]
            path = save_map(binary, self.maps_dir / f"{row:05d}_{stem}")
            datalist = self.table.record(item["image"], path)
        logger.info(
            "saved %s (%d pixels of %d set) and %s", path, int(binary.sum()), binary.numel(), datalist
        )
        return {
            "index": index,
            "map": os.fspath(path),
            "datalist": os.fspath(datalist),
            "fraction_set": round(float(binary.mean()), 4),
        }


#: Datalists the editor can list: a split of the bundle's dataset, or every row of its CSV.
SPLITS = ("train", "val", "test", "all")


def load_session(
    config_files: Sequence[str],
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    split: str = "train",
    overrides: Mapping | None = None,
    device: str | torch.device | None = None,
) -> EditorSession:
    """An :class:`EditorSession` built the way a bundle builds its evaluation.

    Args:
        config_files: the bundle's config list, e.g. the ABN bundle's ``train.json`` and a dataset fragment;
            its ``network_def``, ``validate#preprocessing``, ``splits``, ``dataset_path``, ``datalist_args``,
            ``labels`` and ``class_names`` are used.
        checkpoint: the trained weights (``best.pt``).
        output_dir: where the corrected maps and the new datalist CSV go.
        split: ``train`` (what fine-tuning reads), ``val``, ``test``, or ``all`` rows of the dataset's CSV.
        overrides: config values to replace, as on a bundle's command line (``dataset_dir``, ``fold``, ...).
        device: where the network runs; the bundle's ``device`` by default.
    """
    from monai.bundle import ConfigParser

    from monai_xai.data import csv_datalist, dataset_splits, select_labels
    from monai_xai.networks import load_weights

    if look_up_option(split, SPLITS, default=None) is None:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    parser = ConfigParser()
    parser.read_config(list(config_files))
    parser.update(dict(overrides or {}))
    if parser.get_parsed_content("spatial_dims") != 2:
        raise InputError(None, "the attention editor paints 2D maps: the bundle's spatial_dims must be 2")
    if parser.get_parsed_content("dataset_source") != "csv":
        raise InputError(
            None,
            "the editor writes a copy of the dataset's CSV with a corrected_map column: use a CSV dataset",
        )
    source_csv = parser.get_parsed_content("dataset_path")
    datalist_args = dict(parser.get_parsed_content("datalist_args"))
    if split == "all":
        # datalist_args may also carry options of the split (split_file, dedup, ...): not the reader's
        split_options = inspect.signature(dataset_splits).parameters
        labels = parser.get_parsed_content("labels")
        items = csv_datalist(
            source_csv,
            # as dataset_splits reads it: with `labels`, class_names name the kept classes, not the stored
            class_names=parser.get_parsed_content("class_names") if labels is None else None,
            allow_names=labels is None,
            **{k: v for k, v in datalist_args.items() if k not in split_options},
        )
        items = items if labels is None else select_labels(items, labels)
    else:
        items = parser.get_parsed_content("splits")[split]
    network = load_weights(parser.get_parsed_content("network_def"), checkpoint)
    table = CorrectionTable(
        source_csv,
        output_dir,
        image_col=datalist_args.get("image_col", "image"),
        path_cols=[col for col in (datalist_args.get("mask_col", "mask"),) if col],
    )
    logger.info("scoring %d %s samples of %s", len(items), split, source_csv)
    return EditorSession(
        network,
        parser.get_parsed_content("validate#preprocessing"),
        items,
        table,
        parser.get_parsed_content("class_names"),
        device=parser.get_parsed_content("device") if device is None else device,
        seed=int(parser.get_parsed_content("seed")),
    )
