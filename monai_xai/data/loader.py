"""MONAI's DataLoader with two guarantees the bundles rely on: workers die with their parent, and a split
too small for one batch is an error instead of an epoch that trains nothing."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

import monai.data
from monai.data.utils import worker_init_fn as monai_worker_init_fn

from monai_xai.errors import InputError

__all__ = ["DataLoader", "exit_with_parent"]

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def exit_with_parent(parent_pid: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux; a no-op elsewhere).

    A DataLoader worker watches its parent only between batches and, when the parent was killed while a
    batch sat in the result pipe, can wait on that pipe forever, holding its memory.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        logger.warning(
            "could not tie DataLoader worker %d to its parent: errno %d", os.getpid(), ctypes.get_errno()
        )
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


class _WorkerInit:
    """MONAI's per-worker seeding, then :func:`exit_with_parent`; picklable for spawned workers."""

    def __init__(self, parent_pid: int):
        self.parent_pid = parent_pid

    def __call__(self, worker_id: int) -> None:
        monai_worker_init_fn(worker_id)
        exit_with_parent(self.parent_pid)


class DataLoader(monai.data.DataLoader):
    """``monai.data.DataLoader`` whose workers exit with the process that started them, kept alive across
    epochs (``persistent_workers``) so that each epoch does not pay for starting them again.

    Args:
        dataset: the dataset.
        num_workers: worker processes; 0 loads in the main process.
        split: name of the split in error messages, e.g. ``"train"``.
        kwargs: the rest of ``torch.utils.data.DataLoader``'s arguments.

    Raises:
        InputError: ``drop_last`` is set and the split holds fewer items than one batch, so that an epoch
            would train on nothing.
    """

    def __init__(self, dataset, num_workers: int = 0, split: str = "data", **kwargs) -> None:
        batch_size = kwargs.get("batch_size", 1)
        if kwargs.get("drop_last") and batch_size is not None and len(dataset) < batch_size:
            raise InputError(
                None,
                f"the {split} split has {len(dataset)} items, fewer than one batch of {batch_size}, and "
                "incomplete batches are dropped: an epoch would train on nothing; lower batch_size or add "
                "data",
            )
        if num_workers > 0:
            kwargs.setdefault("persistent_workers", True)
            kwargs.setdefault("worker_init_fn", _WorkerInit(os.getpid()))
        super().__init__(dataset, num_workers=num_workers, **kwargs)
