"""Datalists, splits (near-duplicate-aware on request) and built-in demo data."""

from monai_xai.data.balanced import (
    AUTO_BALANCE_RATIO,
    CLASS_BALANCE_POLICIES,
    ClassBalance,
    ClassBalancedDataset,
    resolve_class_balance,
)
from monai_xai.data.cache import (
    CACHE_MODES,
    DEFAULT_CACHE_BUDGET_GB,
    CacheChoice,
    cached_dataset,
    choose_cache,
    estimate_item_bytes,
    item_hash,
)
from monai_xai.data.coco import (
    clean_detection_datalist,
    coco_class_names,
    coco_datalist,
    coco_splits,
    load_coco,
    masks_to_coco,
)
from monai_xai.data.corrections import CORRECTED_MAP_KEY, CorrectionDatalist, correction_datalist, item_id
from monai_xai.data.datasets import DATASET_SOURCES, dataset_splits, select_labels
from monai_xai.data.dedup import (
    SplitGroups,
    dhash,
    drop_near_duplicates,
    find_near_duplicates,
    group_near_duplicates,
    hamming_distance,
    phash,
)
from monai_xai.data.loader import DataLoader, exit_with_parent
from monai_xai.data.medmnist import MEDMNIST_SPLITS, medmnist_datalist
from monai_xai.data.splits import (
    fold_datalists,
    out_of_fold_indices,
    out_of_fold_parts,
    read_split_file,
    read_split_spec,
    split_indices,
    stratified_kfold,
    train_val_test_split,
)
from monai_xai.data.synthetic import (
    PhantomSet,
    check_phantom_seed,
    make_phantoms,
    marker_region,
    write_demo_dataset,
)
from monai_xai.data.tabular import (
    IMAGE_SUFFIXES,
    csv_datalist,
    folder_datalist,
    image_files,
    image_items,
    inference_datalist,
)
from monai_xai.data.unpaired import UnpairedDataset

__all__ = [
    "CACHE_MODES",
    "DEFAULT_CACHE_BUDGET_GB",
    "CacheChoice",
    "cached_dataset",
    "choose_cache",
    "estimate_item_bytes",
    "item_hash",
    "CORRECTED_MAP_KEY",
    "CorrectionDatalist",
    "correction_datalist",
    "item_id",
    "clean_detection_datalist",
    "coco_class_names",
    "coco_datalist",
    "coco_splits",
    "load_coco",
    "masks_to_coco",
    "AUTO_BALANCE_RATIO",
    "CLASS_BALANCE_POLICIES",
    "ClassBalance",
    "ClassBalancedDataset",
    "resolve_class_balance",
    "DataLoader",
    "exit_with_parent",
    "UnpairedDataset",
    "IMAGE_SUFFIXES",
    "MEDMNIST_SPLITS",
    "PhantomSet",
    "check_phantom_seed",
    "csv_datalist",
    "DATASET_SOURCES",
    "dataset_splits",
    "SplitGroups",
    "dhash",
    "drop_near_duplicates",
    "find_near_duplicates",
    "group_near_duplicates",
    "hamming_distance",
    "phash",
    "fold_datalists",
    "folder_datalist",
    "image_files",
    "image_items",
    "inference_datalist",
    "make_phantoms",
    "marker_region",
    "medmnist_datalist",
    "out_of_fold_indices",
    "out_of_fold_parts",
    "read_split_file",
    "read_split_spec",
    "select_labels",
    "split_indices",
    "stratified_kfold",
    "train_val_test_split",
    "write_demo_dataset",
]
