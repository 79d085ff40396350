"""COCO datalists and their bad input, box-aware transforms, cleaning and mask-to-box conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from monai_xai.data.coco import clean_detection_datalist, coco_datalist, coco_splits, masks_to_coco
from monai_xai.errors import InputError
from monai_xai.transforms.boxes import detection_preset


def _write_coco(tmp_path, annotations, images=None, name="boxes.json"):
    images = images or [{"id": 1, "file_name": "a.png", "width": 40, "height": 20},
                        {"id": 2, "file_name": "b.png", "width": 40, "height": 20}]  # fmt: skip
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": 2, "name": "malignant"}, {"id": 1, "name": "benign"}]}  # fmt: skip
    path = tmp_path / name
    path.write_text(json.dumps(coco))
    return path


def _ann(bbox, category=1, image_id=1, ann_id=7):
    return {"id": ann_id, "image_id": image_id, "category_id": category, "bbox": bbox}


def test_datalist_converts_boxes_and_keeps_negatives(tmp_path):
    path = _write_coco(tmp_path, [_ann([2, 3, 10, 5], category=2), _ann([30.5, 0, 10, 20.4], ann_id=8)])
    items = coco_datalist(path)
    assert items[0]["boxes"].tolist() == [[2, 3, 12, 8], [30.5, 0, 40, 20]]  # clipped within 1 px tolerance
    assert items[0]["labels"].tolist() == [1, 0] and items[0]["label"] == 2  # classes by ascending COCO id
    assert items[1]["boxes"].shape == (0, 4) and items[1]["label"] == 0  # no annotations: a valid negative
    assert items[0]["image"] == str(tmp_path / "a.png")


@pytest.mark.parametrize(
    "annotation, problem",
    [
        (_ann([35, 2, 10, 5]), "annotation 7 of a.png: box [35, 2, 10, 5] lies outside the 40x20 image"),
        (_ann([5, 2, 0, 5]), "annotation 7 of a.png: box of zero or negative size"),
        (_ann([5, 2, 4, 5], category=9), "unknown category_id 9 (known: 1 (benign), 2 (malignant))"),
        (_ann([5, 2, 4, 5], image_id=5), "annotation 7: unknown image_id 5"),
    ],
)
def test_bad_annotations_name_file_and_problem(tmp_path, annotation, problem):
    path = _write_coco(tmp_path, [annotation])
    with pytest.raises(InputError, match="boxes.json: ") as info:
        coco_datalist(path)
    assert problem in str(info.value)


def test_not_coco_and_missing_file(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InputError, match="x.json: not a COCO detection file"):
        coco_datalist(tmp_path / "x.json")
    with pytest.raises(InputError, match="COCO file not found"):
        coco_datalist(tmp_path / "missing.json")


def test_splits_follow_split_file(tmp_path):
    images = [{"id": i, "file_name": f"{i}.png", "width": 8, "height": 8} for i in range(6)]
    path = _write_coco(tmp_path, [_ann([1, 1, 2, 2], image_id=i, ann_id=i) for i in range(3)], images)
    (tmp_path / "splits.json").write_text(
        json.dumps({"test": ["0.png"], "folds": [["1.png", "2.png"], ["3.png"]]})
    )
    parts = coco_splits(path, fold=0)
    names = {k: sorted(i["image"].rsplit("/", 1)[1] for i in parts[k]) for k in ("train", "val", "test")}
    assert names == {"train": ["3.png", "4.png", "5.png"], "val": ["1.png", "2.png"], "test": ["0.png"]}


def test_preset_moves_boxes_with_flips_and_resizes():
    image = torch.zeros(1, 20, 40)
    image[0, 2:8, 4:10] = 1.0  # a bright lesion exactly under its box
    item = {"image": image, "boxes": np.array([[4, 2, 10, 8]], np.float32), "labels": np.array([1])}
    out = detection_preset((10, 20), load=False)(item)
    assert out["boxes"].tolist() == [[2, 1, 5, 4]] and out["image"].shape == (1, 10, 20)
    assert out["original_size"].tolist() == [20, 40]
    flips = detection_preset((20, 40), augment=True, load=False)
    flips.set_random_state(0)
    for _ in range(8):  # whatever zoom/flip was drawn, the box still frames the bright pixels
        aug = flips(item)
        x1, y1, x2, y2 = aug["boxes"][0].round().int().tolist()
        lesion = aug["image"][0] - aug["image"][0].min()  # intensity shifts lift the background
        assert lesion[y1:y2, x1:x2].sum() >= 0.8 * lesion.sum()


def test_clean_drops_small_and_duplicates(tmp_path):
    rng = np.random.default_rng(0)
    base = (rng.random((64, 64)) * 255).astype(np.uint8)
    Image.fromarray(base).save(tmp_path / "a.png")
    Image.fromarray(np.clip(base.astype(int) + 3, 0, 255).astype(np.uint8)).save(tmp_path / "a_copy.png")
    Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8)).save(tmp_path / "b.png")
    items = [{"image": str(tmp_path / n), "size": s, "boxes": np.zeros((1, 4))} for n, s in
             [("a.png", (400, 500)), ("a_copy.png", (400, 500)), ("b.png", (100, 500))]]  # fmt: skip
    kept, report = clean_detection_datalist(items, min_size=(200, 200))
    assert [i["image"] for i in kept] == [str(tmp_path / "a.png")]
    assert report["too_small"] == [str(tmp_path / "b.png")] and report["duplicate_groups"][0]["dropped"] == [
        1
    ]


def test_masks_to_coco_one_box_per_component(tmp_path):
    mask = np.zeros((20, 30), np.uint8)
    mask[2:5, 3:9] = 255
    mask[10:18, 20:25] = 255
    mask[0, 29] = 255  # one-pixel speckle
    Image.fromarray(mask).save(tmp_path / "m.png")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "i.png")
    items = [{"image": "i.png", "mask": "m.png", "class_name": "malignant"}, {"image": "i.png", "mask": None}]
    coco = masks_to_coco(items, ["benign", "malignant"], tmp_path, min_area=2)
    assert [a["bbox"] for a in coco["annotations"]] == [[3, 2, 6, 3], [20, 10, 5, 8]]
    assert {a["category_id"] for a in coco["annotations"]} == {2} and len(coco["images"]) == 2
