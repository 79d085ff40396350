"""Check every item of every split a run uses before its first training step, and remember the verdict.

A bad file in the test split would otherwise let a training finish and fail hours later at evaluation. The
verdict is cached under a key made of the items (file paths with their sizes and modification times, or the
bytes of in-memory arrays) and the checks, so that a rerun on unchanged data does not load everything again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import optional_import

from monai_xai.errors import InputError
from monai_xai.flags import as_bool
from monai_xai.transforms.validate import PROGRESS_MIN_ITEMS, ValidateItemd, diagnose_item
from monai_xai.utils import atomic_write_text

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

__all__ = ["DEFAULT_SPLITS", "check_splits"]

logger = logging.getLogger(__name__)

#: The splits of a ``dataset_splits`` result that a training run and its evaluation use.
DEFAULT_SPLITS = ("train", "val", "test")
#: How many bad items an error message lists before it summarises the rest.
MAX_LISTED = 20
_CACHE_VERSION = 2  # 2: mask values and spatial dimensions are checked


def check_splits(
    splits: dict,
    loader: Callable[[Mapping[Hashable, Any]], Mapping[Hashable, Any]],
    *,
    split_names: Sequence[str] = DEFAULT_SPLITS,
    cache_dir: str | os.PathLike | None = None,
    skip_bad_items: bool = False,
    progress: bool | None = None,
    **checks: Any,
) -> dict:
    """Load and check every item of ``splits[name]`` for each of ``split_names``.

    Args:
        splits: ``{"train": [...], "val": [...], "test": [...], ...}`` as
            :func:`monai_xai.data.dataset_splits` returns; other keys pass through.
        loader: reads an item, e.g. ``Compose([LoadImageOrArrayd(...), EnsureMaskd()])``.
        split_names: the splits to check (those absent from ``splits`` are left out).
        cache_dir: folder for the cached verdict; ``None`` checks every time.
        skip_bad_items: drop bad items (a warning each) instead of raising.
        progress: show a progress bar (on a terminal only; a log gets the summary line); by default
            from ``PROGRESS_MIN_ITEMS`` items on.
        checks: arguments of :class:`~monai_xai.transforms.ValidateItemd` (``num_classes``,
            ``expected_channels``, ``spatial_dims``, ``require_mask``, ...). A mask's values are checked by
            the ``loader``'s :class:`~monai_xai.transforms.EnsureMaskd` (its ``mask_threshold``), whose
            error counts the item as unreadable.

    Returns:
        ``splits`` with bad items dropped (when skipping) and ``"input_check"``: ``{"checked": n,
        "skipped": k, "skipped_per_split": {...}, "seconds": s, "cached": bool}``.

    Raises:
        InputError: some items cannot be used and ``skip_bad_items`` is off; the message lists each file
            and its problem.
    """
    skip_bad_items = as_bool(skip_bad_items, "skip_bad_items")
    names = [name for name in split_names if name in splits]
    n_items = sum(len(splits[name]) for name in names)
    validator = ValidateItemd(**checks)
    start = time.perf_counter()
    cache_file = None
    if cache_dir is not None:
        key = _cache_key({name: splits[name] for name in names}, loader, checks)
        cache_file = Path(cache_dir) / f"input_check_{key}.json"
    bad = _read_cache(cache_file)
    cached = bad is not None
    if bad is None:
        bad = _diagnose(splits, names, loader, validator, n_items, progress)
        if cache_file is not None:
            atomic_write_text(
                cache_file, json.dumps({"version": _CACHE_VERSION, "checked": n_items, "bad": bad})
            )
    seconds = time.perf_counter() - start
    verdict = "already checked (cached verdict)" if cached else "checked"
    logger.info(
        "input check: %d items of %s %s in %.1f s, %d bad",
        n_items,
        "/".join(names),
        verdict,
        seconds,
        len(bad),
    )
    if bad and not skip_bad_items:
        raise InputError(None, _bad_items_message(bad, n_items))
    dropped = {name: {b["index"] for b in bad if b["split"] == name} for name in names}
    for b in bad:
        logger.warning("skipping %s item: %s", b["split"], b["message"])
    if bad:
        logger.warning("skipped %d of %d items that cannot be used", len(bad), n_items)
    result = dict(splits)
    for name in names:
        result[name] = [item for i, item in enumerate(splits[name]) if i not in dropped[name]]
    result["input_check"] = {
        "checked": n_items,
        "skipped": len(bad),
        "skipped_per_split": {name: len(dropped[name]) for name in names},
        "seconds": round(seconds, 2),
        "cached": cached,
    }
    return result


def _diagnose(splits, names, loader, validator, n_items, progress) -> list[dict]:
    show = (n_items >= PROGRESS_MIN_ITEMS if progress is None else progress) and has_tqdm
    bar = tqdm(total=n_items, desc="checking inputs", unit="item", disable=None) if show else None
    bad = []
    try:
        for name in names:
            for index, item in enumerate(splits[name]):
                diagnosis = diagnose_item(item, loader, validator)
                if diagnosis is not None:
                    kinds, message = diagnosis
                    bad.append({"split": name, "index": index, "kinds": kinds, "message": message})
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    return bad


def _bad_items_message(bad: list[dict], n_items: int) -> str:
    lines = [f"  {b['split']}: {b['message']}" for b in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
    head = (
        f"{len(bad)} of {n_items} items cannot be used; fix or remove them, or pass --skip_bad_items true "
        "to leave them out:"
    )
    return "\n".join([head, *lines])


def _fingerprint(value: Any) -> Any:
    """What identifies an item's value: a file's path, size and modification time, an array's bytes."""
    if isinstance(value, str | os.PathLike):
        path = os.fspath(value)
        try:
            stat = os.stat(path)
        except OSError:
            return [path, None]
        return [path, stat.st_size, stat.st_mtime_ns]
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        contiguous = np.ascontiguousarray(value)
        return [str(contiguous.dtype), list(contiguous.shape), hashlib.sha1(contiguous.tobytes()).hexdigest()]
    if isinstance(value, Mapping):
        return {str(k): _fingerprint(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_fingerprint(v) for v in value]
    return repr(value)


def _cache_key(splits: dict, loader: Any, checks: Mapping[str, Any]) -> str:
    transforms = getattr(loader, "transforms", [loader])
    content = {
        "version": _CACHE_VERSION,
        "loader": [[type(t).__qualname__, _settings(t)] for t in transforms],
        "checks": {k: repr(v) for k, v in sorted(checks.items())},
        "splits": {name: _fingerprint(items) for name, items in splits.items()},
    }
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _settings(transform: Any) -> dict[str, str]:
    """A transform's plain public settings (``mask_threshold``, ``keys``, ...): a changed one checks again."""
    return {
        k: repr(v)
        for k, v in sorted(getattr(transform, "__dict__", {}).items())
        if not k.startswith("_") and _is_plain(v)
    }


def _is_plain(value: Any) -> bool:
    """Numbers, strings and sequences of them: values whose ``repr`` is the same in every run."""
    if isinstance(value, tuple | list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def _read_cache(path: Path | None) -> list[dict] | None:
    if path is None or not path.is_file():
        return None
    try:
        content = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if content.get("version") != _CACHE_VERSION:
        return None
    return content["bad"]
