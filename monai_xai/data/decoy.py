"""``python -m monai_xai.data.decoy``: DecoyBUSI, a copy of leak-free BUSI (benign vs malignant) with a
planted shortcut marker, the phantom demo's shortcut test on real images.

A small bright glyph in a corner (a caliper cross, a measurement text, or a square; a few percent of the
image) stands in for the burnt-in annotations and device marks a classifier can learn instead of the lesion.
In every training and validation image (the split file's folds) the marker agrees with the label; in the test
set it agrees with the label in exactly half of each class, so a classifier that reads the marker is right
on one half and wrong on the other (worst-group accuracy: :mod:`monai_xai.metrics.groups`). With the
``presence`` scheme the marker is drawn when it says *malignant* (as the phantoms' corner marker says class
1); with ``glyphs`` every image carries one, ``--kind`` saying malignant and ``--other_kind`` benign.

The copy keeps BUSI's layout (``benign/benign_001.png`` and its ``_mask.png``) and writes ``labels.csv``
(``image, mask, label`` as the class name, ``label_id`` as in BUSI, ``split``, ``marker`` the glyph drawn or
empty, ``marker_agrees`` 1/0, ``marker_box`` ``"x0 y0 x1 y1"`` in fractions of the image, x along the columns:
where the marker is, or would be), ``splits.json`` (the split file's test set and folds restricted to the
images copied; its excluded near-duplicates are left out) and ``decoy.json`` (the settings and the sources'
digests). ``--clean`` writes the twin without any marker drawn, with the same ``marker_agrees`` and
``marker_box``: the ceiling every arm is compared with, scored on the same groups and regions.

It never writes into the repository or into the shared data folder (BUSI must not be committed), nor into
a folder that is not empty unless ``--overwrite`` is given, and then only over an earlier DecoyBUSI copy.

.. code-block:: bash

    python -m monai_xai.data.decoy --out ../decoy_busi/decoy
    python -m monai_xai.data.decoy --out ../decoy_busi/clean --clean
    python -m monai_xai.data.decoy --out /tmp/decoy --kind text --size 0.2 --position bottom_right
    python -m monai_xai.data.decoy --figure bundles/abn_classification/docs/figures/decoy_busi_marker.png
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from monai_xai.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CLASSES",
    "COLUMNS",
    "KINDS",
    "POSITIONS",
    "SCHEMES",
    "SETTINGS_FILE",
    "MarkerSpec",
    "draw_marker",
    "glyph",
    "main",
    "marker_figure",
    "write_decoy_busi",
]

#: the repository root (the package is installed in editable mode from it)
REPO = Path(__file__).resolve().parents[2]
#: BUSI as staged beside the checkout, and the committed near-duplicate-grouped split
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "busi_256"
DEFAULT_SPLIT = REPO / "configs" / "datasets" / "busi_splits_dedup.json"
#: the two classes copied, in label order, with their ``label_id`` in BUSI's labels.csv
CLASSES = ("benign", "malignant")
SOURCE_IDS = {"1": 0, "2": 1}
KINDS = ("caliper", "text", "square")
POSITIONS = ("top_left", "top_right", "bottom_left", "bottom_right")
SCHEMES = ("presence", "glyphs")
COLUMNS = ("image", "mask", "label", "label_id", "split", "marker", "marker_agrees", "marker_box")
#: the settings record that also marks a folder as a DecoyBUSI copy (``--overwrite`` replaces only those)
SETTINGS_FILE = "decoy.json"

# A measurement readout, "2.4cm", in a 3x5 pixel font of our own (one blank column between characters).
_FONT = {
    "2": ["111", "001", "111", "100", "111"],
    ".": ["0", "0", "0", "0", "1"],
    "4": ["101", "101", "111", "001", "001"],
    "c": ["000", "000", "111", "100", "111"],
    "m": ["00000", "00000", "11111", "10101", "10101"],
}
_TEXT = "2.4cm"


def _text_bitmap() -> np.ndarray:
    columns = []
    for i, char in enumerate(_TEXT):
        if i:
            columns.append(np.zeros((5, 1), dtype=bool))
        columns.append(np.array([[c == "1" for c in row] for row in _FONT[char]], dtype=bool))
    return np.concatenate(columns, axis=1)


def glyph(kind: str, width: int) -> np.ndarray:
    """The marker's pixels, a bool (h, width) array: ``caliper`` a cross, ``text`` the readout "2.4cm"
    (height about a quarter of the width), ``square`` a filled square."""
    if kind not in KINDS:
        raise ValueError(f"marker kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if width < 3:
        raise ValueError(f"a marker narrower than 3 pixels cannot be drawn, got {width}")
    if kind == "square":
        return np.ones((width, width), dtype=bool)
    if kind == "caliper":
        cross = np.zeros((width, width), dtype=bool)
        thick = max(1, round(width / 12))
        start = (width - thick) // 2
        cross[start : start + thick, :] = True
        cross[:, start : start + thick] = True
        return cross
    bitmap = _text_bitmap()
    height = max(5, round(width * bitmap.shape[0] / bitmap.shape[1]))
    rows = np.arange(height) * bitmap.shape[0] // height
    cols = np.arange(width) * bitmap.shape[1] // width
    return bitmap[rows][:, cols]


@dataclass(frozen=True)
class MarkerSpec:
    """What a marker looks like and where it goes.

    Args:
        kind: a :data:`KINDS` glyph.
        size: the glyph's width as a fraction of the image width (0.15: about 2 % of the image for a cross).
        position: the corner, one of :data:`POSITIONS`.
        margin: the gap to the image border as a fraction of the side, so that augmentation's small shifts
            and rotations keep the marker inside the image.
        intensity: the glyph's grey value as a fraction of white.
    """

    kind: str = "caliper"
    size: float = 0.15
    position: str = "top_left"
    margin: float = 0.06
    intensity: float = 1.0

    def __post_init__(self) -> None:
        glyph(self.kind, 3)  # checks the kind
        if self.position not in POSITIONS:
            raise ValueError(f"marker position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        if not 0.0 < self.size <= 0.4:
            raise ValueError(f"marker size must lie in (0, 0.4] of the image width, got {self.size}")
        if not 0.0 <= self.margin <= 0.2 or not 0.0 < self.intensity <= 1.0:
            raise ValueError(
                f"margin in [0, 0.2] and intensity in (0, 1] expected, got {self.margin}, {self.intensity}"
            )

    def pixels(self, shape: Sequence[int]) -> tuple[np.ndarray, int, int]:
        """The glyph at an image of ``shape`` (H, W) and the row and column of its top-left pixel."""
        height, width = int(shape[0]), int(shape[1])
        mark = glyph(self.kind, max(3, round(self.size * width)))
        gap_rows, gap_cols = round(self.margin * height), round(self.margin * width)
        top = gap_rows if self.position.startswith("top") else height - gap_rows - mark.shape[0]
        left = gap_cols if self.position.endswith("left") else width - gap_cols - mark.shape[1]
        if top < 0 or left < 0:
            raise ValueError(f"a {self.size} marker does not fit an image of {height}x{width}")
        return mark, top, left

    def box(self, shape: Sequence[int]) -> str:
        """The glyph's box as ``"x0 y0 x1 y1"`` in fractions of the image (x along the columns)."""
        mark, top, left = self.pixels(shape)
        height, width = int(shape[0]), int(shape[1])
        x0, x1 = left / width, (left + mark.shape[1]) / width
        y0, y1 = top / height, (top + mark.shape[0]) / height
        return " ".join(f"{v:.6f}" for v in (x0, y0, x1, y1))


def draw_marker(image: np.ndarray, spec: MarkerSpec) -> np.ndarray:
    """A copy of the (H, W) uint8 ``image`` with the marker drawn in."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a (H, W) uint8 image, got {image.shape} {image.dtype}")
    mark, top, left = spec.pixels(image.shape)
    out = image.copy()
    window = out[top : top + mark.shape[0], left : left + mark.shape[1]]
    window[mark] = round(255 * spec.intensity)
    return out


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_out(out: Path, source: Path, overwrite: bool) -> None:
    """Refuse the repository, the shared data and a non-empty folder (an earlier copy with ``overwrite``)."""
    resolved = out.resolve()
    for folder, why in (
        (REPO, "inside the repository: BUSI-derived images must not be committed; write outside it"),
        (DEFAULT_SOURCE.parents[1], "inside the shared data folder, which is read-only for the project"),
        (source.resolve(), "inside the source dataset"),
    ):
        if _inside(resolved, folder.resolve()):
            raise InputError(out, why)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(out, "exists and is not empty: give another --out, or --overwrite to replace it")
        if not (out / SETTINGS_FILE).is_file():
            raise InputError(
                out, f"not a DecoyBUSI copy (no {SETTINGS_FILE}): --overwrite replaces only those"
            )


def _read_source(source: Path) -> list[dict[str, str]]:
    labels = source / "labels.csv"
    if not labels.is_file():
        raise InputError(labels, "missing: --source must be BUSI as staged (busi_256 with its labels.csv)")
    with labels.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"image", "mask", "label_id"}
    if not rows or not needed <= set(rows[0]):
        raise InputError(labels, f"expected the columns {sorted(needed)} and at least one row")
    return [row for row in rows if row["label_id"] in SOURCE_IDS]


def _parts(split: Path, rows: list[dict[str, str]]) -> tuple[dict[str, str], int]:
    """Image -> ``test`` or ``fold<k>`` for the benign and malignant images; how many were excluded."""
    from monai_xai.data.splits import read_split_spec

    spec = read_split_spec(split, needs_folds=True)
    part = {image: "test" for image in spec["test"]}
    for k, fold in enumerate(spec["folds"]):
        part.update({image: f"fold{k}" for image in fold})
    excluded = set(spec.get("excluded", []))
    images = {row["image"] for row in rows}
    unplaced = sorted(images - set(part) - excluded)
    if unplaced:
        raise InputError(split, f"{len(unplaced)} images are in no part of the split, e.g. {unplaced[:3]}")
    return {image: p for image, p in part.items() if image in images}, len(images & excluded)


def _agreements(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Per image whether the marker agrees: exactly ``round(fraction * n)`` of each class, at random."""
    agrees = np.zeros(len(labels), dtype=bool)
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        chosen = rng.permutation(members)[: int(round(fraction * len(members)))]
        agrees[chosen] = True
    return agrees


def write_decoy_busi(
    out: str | os.PathLike,
    source: str | os.PathLike = DEFAULT_SOURCE,
    split: str | os.PathLike = DEFAULT_SPLIT,
    marker: MarkerSpec | None = None,
    other_kind: str = "text",
    scheme: str = "presence",
    agreement: float = 1.0,
    seed: int = 0,
    clean: bool = False,
    overwrite: bool = False,
) -> dict:
    """Write DecoyBUSI (or with ``clean`` its marker-free twin) to ``out``; returns the settings record.

    ``agreement``: the share of each class's training and validation images whose marker agrees (1.0: all);
    in the test set it is one half. The same ``seed`` and options give the same images and assignment, so a
    decoy copy and its clean twin share their groups and marker boxes.
    """
    from PIL import Image

    marker = marker or MarkerSpec()
    out, source, split = Path(out), Path(source), Path(split)
    if scheme not in SCHEMES:
        raise InputError(None, f"--scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if scheme == "glyphs" and other_kind == marker.kind:
        raise InputError(None, f"the glyphs scheme needs two different kinds, got {marker.kind} twice")
    glyph(other_kind, 3)
    if not 0.5 < agreement <= 1.0:
        raise InputError(
            None, f"--agreement must lie in (0.5, 1]: the marker must mostly agree, got {agreement}"
        )
    _check_out(out, source, overwrite)
    rows = sorted(_read_source(source), key=lambda row: row["image"])
    parts, n_excluded = _parts(split, rows)
    rows = [row for row in rows if row["image"] in parts]
    labels = np.array([SOURCE_IDS[row["label_id"]] for row in rows])
    test = np.array([parts[row["image"]] == "test" for row in rows])
    rng = np.random.default_rng(seed)
    agrees = np.zeros(len(rows), dtype=bool)
    agrees[~test] = _agreements(labels[~test], agreement, rng)
    agrees[test] = _agreements(labels[test], 0.5, rng)
    other = MarkerSpec(other_kind, marker.size, marker.position, marker.margin, marker.intensity)

    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    table = []
    try:
        for row, label, agree in zip(rows, labels, agrees):
            says_malignant = bool(label) == bool(agree)
            spec = marker if says_malignant or scheme == "presence" else other
            drawn = not clean and (scheme == "glyphs" or says_malignant)
            path = source / row["image"]
            if not path.is_file() or not (source / row["mask"]).is_file():
                raise InputError(path, "image or its mask is missing from the source")
            image = np.asarray(Image.open(path).convert("L"))
            target = partial / row["image"]
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(draw_marker(image, spec) if drawn else image).save(target)
            shutil.copyfile(source / row["mask"], partial / row["mask"])
            table.append(
                [
                    row["image"],
                    row["mask"],
                    CLASSES[label],
                    row["label_id"],
                    parts[row["image"]],
                    spec.kind if drawn else "",
                    int(agree),
                    spec.box(image.shape),
                ]
            )
        with (partial / "labels.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(table)
        spec_file = json.loads(split.read_text())
        folds = sorted({p for p in parts.values() if p != "test"})
        splits = {
            "source_split": str(split),
            "test": [image for image, p in parts.items() if p == "test"],
            "folds": [[image for image, p in parts.items() if p == fold] for fold in folds],
            "excluded": [],
            "dedup": spec_file.get("dedup"),
        }
        (partial / "splits.json").write_text(json.dumps(splits, indent=1))
        settings = {
            "kind": "DecoyBUSI clean twin" if clean else "DecoyBUSI",
            "marker": asdict(marker),
            "other_kind": other_kind if scheme == "glyphs" else None,
            "scheme": scheme,
            "agreement": agreement,
            "test_agreement": 0.5,
            "seed": seed,
            "clean": clean,
            "source": {"folder": str(source), "labels": _digest(source / "labels.csv")},
            "split": {"file": str(split), "content": _digest(split)},
            "images": {
                "total": len(rows),
                "test": int(test.sum()),
                "excluded_near_duplicates": n_excluded,
                "marker_drawn": sum(1 for r in table if r[5]),
                "test_agreeing": int(agrees[test].sum()),
            },
        }
        (partial / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
        if out.exists():
            shutil.rmtree(out)  # an earlier copy: _check_out refused anything else
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return settings


#: the images of the README's figure: one benign and one malignant training image
FIGURE_IMAGES = ("benign/benign_001.png", "malignant/malignant_010.png")


def marker_figure(
    source: str | os.PathLike = DEFAULT_SOURCE,
    images: Sequence[str] = FIGURE_IMAGES,
    size: float = 0.15,
    position: str = "top_left",
) -> Figure:
    """What the markers look like: a row per image, the image as it is, then with each :data:`KINDS` glyph
    (its box outlined), for the README."""
    from PIL import Image

    from monai_xai.utils import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(len(images), len(KINDS) + 1, figsize=(2.2 * (len(KINDS) + 1), 2.3 * len(images)))
    axes = np.atleast_2d(axes)
    for row, name in enumerate(images):
        path = Path(source) / name
        if not path.is_file():
            raise InputError(path, "missing from the source")
        image = np.asarray(Image.open(path).convert("L"))
        for col, kind in enumerate([None, *KINDS]):
            ax = axes[row, col]
            spec = MarkerSpec(kind or "caliper", size, position)
            ax.imshow(image if kind is None else draw_marker(image, spec), cmap="gray", vmin=0, vmax=255)
            if kind is not None:
                x0, y0, x1, y1 = (float(v) for v in spec.box(image.shape).split())
                h, w = image.shape
                corner, extent = (x0 * w - 0.5, y0 * h - 0.5), ((x1 - x0) * w, (y1 - y0) * h)
                outline = plt.Rectangle(
                    corner, *extent, fill=False, edgecolor="red", linewidth=0.8, linestyle="--"
                )
                ax.add_patch(outline)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("as in BUSI" if kind is None else f"--kind {kind}", fontsize=9)
        axes[row, 0].set_ylabel(name.split("/")[0], fontsize=9)
    fig.suptitle(
        f"DecoyBUSI markers: {size:.2f} of the width, {position.replace('_', ' ')} (box dashed)", fontsize=9
    )
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.data.decoy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, help="the new folder (outside the repository)")
    parser.add_argument(
        "--figure", type=Path, help="only draw what the markers look like (a PNG), from a few source images"
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="BUSI as staged (busi_256)")
    parser.add_argument("--split", type=Path, default=DEFAULT_SPLIT, help="the near-duplicate-grouped split")
    parser.add_argument("--kind", default="caliper", choices=KINDS, help="the marker (it says malignant)")
    parser.add_argument(
        "--other_kind", default="text", choices=KINDS, help="with --scheme glyphs: says benign"
    )
    parser.add_argument("--scheme", default="presence", choices=SCHEMES)
    parser.add_argument("--size", type=float, default=0.15, help="marker width, fraction of the image width")
    parser.add_argument("--position", default="top_left", choices=POSITIONS)
    parser.add_argument("--intensity", type=float, default=1.0, help="grey value, fraction of white")
    parser.add_argument(
        "--agreement", type=float, default=1.0, help="share of training/validation markers that agree"
    )
    parser.add_argument("--seed", type=int, default=0, help="the test set's random assignment")
    parser.add_argument("--clean", action="store_true", help="the twin without markers (same assignment)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier DecoyBUSI copy at --out")
    args = parser.parse_args(argv)
    if (args.out is None) == (args.figure is None):
        parser.error("give --out (write a copy) or --figure (draw the markers), one of the two")
    try:
        spec = MarkerSpec(args.kind, args.size, args.position, intensity=args.intensity)
        if args.figure is not None:
            from monai_xai.utils import atomic_path, pyplot

            figure = marker_figure(args.source, size=args.size, position=args.position)
            with atomic_path(args.figure) as tmp:  # the data layer writes its figure without visualize's help
                figure.savefig(tmp, dpi=110)
            pyplot().close(figure)
            print(f"written {args.figure}")
            return 0
        settings = write_decoy_busi(
            args.out,
            args.source,
            args.split,
            spec,
            other_kind=args.other_kind,
            scheme=args.scheme,
            agreement=args.agreement,
            seed=args.seed,
            clean=args.clean,
            overwrite=args.overwrite,
        )
    except ValueError as error:  # an InputError naming the file, or a bad option
        raise SystemExit(f"{parser.prog}: error: {error}") from error
    images = settings["images"]
    print(
        f"{args.out}: {settings['kind']}, {images['total']} images ({images['test']} test, "
        f"{images['test_agreeing']} of them with an agreeing marker), {images['marker_drawn']} markers "
        "drawn, "
        f"{images['excluded_near_duplicates']} excluded near-duplicates left out"
    )
    return 0


if __name__ == "__main__":
    main()
