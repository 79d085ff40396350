"""Run identity: what defines a run's model and data, kept in its folder, so a run only ever resumes itself.

A training run writes ``run.json`` into its folder: the settings that define its model and data (the
*identity*: network definition, dataset file, split file and fold, class names, preset, ...), their
fingerprint, and a random ``uid`` of this one run. A later command on the same folder resumes it only when its
own identity has the same fingerprint; anything else stops before training with an error that names the
settings that differ. ``overwrite`` (or ``resume`` false) moves the old run aside, never deletes it. The
MLflow handler continues only the MLflow run tagged with the folder's ``uid``, and every file that remembers a
best score (``best.json``, ``early_stopping.json``) carries the fingerprint it belongs to.

Files named in the identity count by content, not by path: any string value naming an existing file is
replaced by a digest of its bytes, so the same data under another path resumes, and an edited CSV does not.
A setting added to the identity after runs were made (:data:`LATER_KEYS`, e.g. ``pretrained_weights`` or
``batch_augmentation``) is left out while it has the value those runs had, so they keep their fingerprint
and still resume, while a run that sets it otherwise is another run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_xai.errors import InputError
from monai_xai.locking import LockHeldError, take_lock
from monai_xai.utils import atomic_write_json

__all__ = [
    "LATER_KEYS",
    "OPTIONAL_FILES",
    "RUN_FILE",
    "RunFolder",
    "RunIdentityError",
    "RunLockedError",
    "canonical_identity",
    "file_digest",
    "fingerprint",
    "identity_differences",
]

logger = logging.getLogger(__name__)

#: The run's record in its folder.
RUN_FILE = "run.json"
#: Identity keys naming a file a run may start from: when set, the file must exist and counts by content.
OPTIONAL_FILES = ("pretrained_weights",)
#: Identity keys added after runs were made, with the value every such run had: left out of the identity while
#: equal to it, so those runs keep their fingerprint (a run with batch augmentation is not one of them).
LATER_KEYS: dict[str, Any] = {"pretrained_weights": None, "batch_augmentation": False}
#: Lock file beside it; held (``flock``) by the process that trains in the folder and released when it dies.
LOCK_FILE = ".run.lock"
#: What moving a run aside leaves in place: the lock, and the MLflow store of ``default_tracking_uri``.
_STAYS = (LOCK_FILE, "mlruns.db", "mlruns")
#: Files at most this large are hashed whole; larger ones (MedMNIST 3D archives) by size and head and tail.
_WHOLE_FILE_LIMIT = 256 * 2**20
_CHUNK = 16 * 2**20

#: Locks held by this process, by folder: crossval trains and evaluates several configs in one process.
_HELD_LOCKS: dict[Path, Any] = {}


class RunIdentityError(InputError):
    """The folder holds another run than the one this command describes."""


class RunLockedError(InputError):
    """Another live process is training in the folder."""


def file_digest(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of the file's bytes (size, first and last 16 MiB for files over 256 MiB)."""
    path = Path(path)
    size = path.stat().st_size
    sha = hashlib.sha256()
    with path.open("rb") as f:
        if size <= _WHOLE_FILE_LIMIT:
            for block in iter(lambda: f.read(_CHUNK), b""):
                sha.update(block)
        else:
            sha.update(str(size).encode())
            sha.update(f.read(_CHUNK))
            f.seek(size - _CHUNK)
            sha.update(f.read(_CHUNK))
    return f"sha256:{sha.hexdigest()}"


def canonical_identity(identity: Any) -> Any:
    """``identity`` as plain JSON values: tuples as lists, paths and file names as digests of their files.

    Keys of :data:`LATER_KEYS` are left out while they hold the value older runs had; keys of
    :data:`OPTIONAL_FILES` must name an existing file when set.

    Args:
        identity: the settings that define a run, JSON-like.
    """
    if isinstance(identity, Mapping):
        return {
            str(k): canonical_identity(_optional_file(k, v) if k in OPTIONAL_FILES else v)
            for k, v in sorted(identity.items(), key=lambda kv: str(kv[0]))
            if not (k in LATER_KEYS and _same_value(v, LATER_KEYS[k]))
        }
    if isinstance(identity, list | tuple):
        return [canonical_identity(v) for v in identity]
    if isinstance(identity, os.PathLike) or (isinstance(identity, str) and identity):
        text = os.fspath(identity)
        if os.path.isfile(text):
            return {"file": os.path.basename(text), "content": file_digest(text)}
        return text
    if identity is None or isinstance(identity, bool | int | float | str):
        return identity
    if hasattr(identity, "tolist"):  # numpy / torch scalars and arrays
        return canonical_identity(identity.tolist())
    raise TypeError(f"run identity values must be JSON-like, got {type(identity).__name__}: {identity!r}")


def _same_value(value: Any, legacy: Any) -> bool:
    """``value`` equals ``legacy`` with the same type (``0`` is not ``False``)."""
    return type(value) is type(legacy) and value == legacy


def _optional_file(key: str, value: Any) -> Any:
    """``value`` of an :data:`OPTIONAL_FILES` key, checked: a path must name an existing file."""
    if isinstance(value, str | os.PathLike) and not os.path.isfile(value):
        raise InputError(value, f"{key}: file not found")
    return value


def fingerprint(identity: Mapping) -> str:
    """12 hex digits of the sha256 of the canonical identity: same settings and data, same fingerprint."""
    text = json.dumps(canonical_identity(identity), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def identity_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """``key: saved -> current`` for each setting that differs, nested keys joined by ``.``."""
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        found = []
        for key in sorted(set(saved) | set(current)):
            name = f"{prefix}.{key}" if prefix else str(key)
            found += identity_differences(saved.get(key, "<unset>"), current.get(key, "<unset>"), name)
        return found
    if saved == current:
        return []
    return [f"{prefix or 'identity'}: {json.dumps(saved)} -> {json.dumps(current)}"]


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class RunFolder:
    """The folder of one training run and the identity it must keep.

    Construction reads nothing but the identity's files; :meth:`claim` (a bundle's first ``initialize`` step)
    checks the folder, takes its lock and writes ``run.json``. In a torchrun job rank 0 claims and the other
    ranks check the record it wrote.

    Args:
        run_dir: the run's folder (the bundle's ``output_dir``, or the sub-folder a workflow trains in).
        identity: the settings that define the run's model and data, JSON-like; strings naming files count
            by the files' content.
        resume: continue a run with the same fingerprint; False starts afresh and moves an old run aside.
        overwrite: move aside a run with another fingerprint instead of refusing it.
        name: how the run is called in messages (e.g. ``abn_classification``).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        identity: Mapping,
        resume: bool = True,
        overwrite: bool = False,
        name: str = "run",
    ) -> None:
        from monai_xai.flags import as_bool

        self.run_dir = Path(run_dir)
        self.identity = canonical_identity(identity)
        self.fingerprint = fingerprint(self.identity)
        self.resume = as_bool(resume, "resume")
        self.overwrite = as_bool(overwrite, "overwrite")
        self.name = name
        self.uid: str | None = None

    @property
    def record_file(self) -> Path:
        return self.run_dir / RUN_FILE

    def read_record(self) -> dict | None:
        """The folder's ``run.json``, or None when it has none."""
        if not self.record_file.is_file():
            return None
        try:
            return json.loads(self.record_file.read_text())
        except json.JSONDecodeError as err:
            raise RunIdentityError(
                self.record_file, f"not valid JSON ({err}); move the folder aside"
            ) from err

    def holds_a_run(self) -> bool:
        """A ``run.json``, or checkpoints left by a run from before run records existed."""
        if self.record_file.is_file():
            return True
        return any(self.run_dir.glob("checkpoints/*.pt")) or any(self.run_dir.glob("checkpoints/*.json"))

    def claim(self) -> RunFolder:
        """Make the folder this run's, or stop with an error that says why not and what to do."""
        if _rank() == 0:
            self._claim_on_rank0()
            _barrier()
        else:
            _barrier()
            record = self.read_record()
            if record is None or record.get("fingerprint") != self.fingerprint:
                raise RunIdentityError(self.record_file, "rank 0 wrote another run identity than this rank's")
            self.uid = record["uid"]
        return self

    def _claim_on_rank0(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        record = self.read_record()
        if self.holds_a_run():
            same = record is not None and record.get("fingerprint") == self.fingerprint
            if same and self.resume:
                self.uid = record["uid"]
                logger.info(
                    f"{self.name}: continuing the run in {self.run_dir} (fingerprint {self.fingerprint})"
                )
                return
            if not same and not self.overwrite:
                raise RunIdentityError(self.run_dir, self._mismatch_message(record))
            moved = self._move_aside()
            why = "resume is false" if same else "overwrite is true"
            logger.warning(f"{self.name}: {why}; the previous run in {self.run_dir} was moved to {moved}")
        self.uid = uuid.uuid4().hex
        record = {
            "fingerprint": self.fingerprint,
            "uid": self.uid,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "identity": self.identity,
        }
        atomic_write_json(self.record_file, record)

    def _mismatch_message(self, record: dict | None) -> str:
        if record is None:
            what = "checkpoints from a run without a run.json (written before runs recorded their identity)"
        else:
            diffs = identity_differences(record.get("identity", {}), self.identity)
            what = "another run (fingerprint {} != {}); settings that differ:\n  {}".format(
                record.get("fingerprint"), self.fingerprint, "\n  ".join(diffs) or "(none listed)"
            )
        return (
            f"holds {what}\n"
            "Not resuming it. Either choose another folder (--output_dir ...) or pass --overwrite true, "
            f"which moves the old run aside (to {self.run_dir.name}.replaced-<time>) and starts afresh."
        )

    def _move_aside(self) -> Path:
        """Rename the folder's run into a sibling ``<name>.replaced-<time>`` folder.

        The lock and a default MLflow store (``mlruns.db``, ``mlruns/``) stay: the store holds the old run and
        the new one side by side (told apart by their ``uid`` tags), and an open store must not move.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.run_dir.with_name(f"{self.run_dir.name}.replaced-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.run_dir.with_name(f"{self.run_dir.name}.replaced-{stamp}-{n}")
        target.mkdir(parents=True)
        for entry in self.run_dir.iterdir():
            if entry.name not in _STAYS:
                os.replace(entry, target / entry.name)
        return target

    def _lock(self) -> None:
        """Hold the folder's lock for the life of this process; a second process in it stops at once."""
        key = self.run_dir.resolve()
        if key in _HELD_LOCKS:
            return
        try:
            handle = take_lock(self.run_dir / LOCK_FILE)
        except LockHeldError as held:
            raise RunLockedError(
                self.run_dir,
                f"in use by {held.holder}: two processes must not train in one run folder "
                f"(wait for it to end, or choose another --output_dir)",
            ) from None
        _HELD_LOCKS[key] = handle

    def release(self) -> None:
        """Let another process use the folder (the lock goes anyway when this process ends)."""
        handle = _HELD_LOCKS.pop(self.run_dir.resolve(), None)
        if handle is not None:
            handle.close()

    def verify(self) -> RunFolder:
        """For evaluation: the folder's run must have this identity (a folder without ``run.json`` passes)."""
        record = self.read_record()
        if record is None:
            logger.warning(
                f"{self.record_file} not found: cannot check that the checkpoint matches this config"
            )
            return self
        if record.get("fingerprint") != self.fingerprint:
            diffs = identity_differences(record.get("identity", {}), self.identity)
            raise RunIdentityError(
                self.run_dir,
                f"trained with other settings than this evaluation's "
                f"(fingerprint {record.get('fingerprint')} != {self.fingerprint}):\n  " + "\n  ".join(diffs),
            )
        self.uid = record.get("uid")
        return self

    def run_name(self, base: str) -> str:
        """``<base>-<fingerprint>``: the MLflow run name, so runs of different settings never share a name."""
        return f"{base}-{self.fingerprint}"
