"""Memory and speed of the ABN bundle's training as the dataset grows: 80,000 phantoms next to 1,000.

``run`` generates both datasets once (seeded phantoms of :func:`monai_xai.data.make_phantoms` with their
lesion masks, ``--size`` px PNG, ``labels.csv`` and ``splits.json``: validation and test ``min(200, n/10)``
images each, the rest training), then trains one epoch-slice of the ABN bundle (``configs/train.json``,
``--mode dynamic`` as the bundle's default, its cache policy :func:`monai_xai.data.cached_dataset` deciding
where the preprocessed images live) on each, in a process of its own (``slice``), and ``collect``s:

* images/s over the same number of timed iterations (``--iterations`` at ``--batch_size``) after
  ``--warmup`` untimed ones: each iteration from fetching its batch to the end of its step
  (``GET_BATCH_STARTED`` to ``ITERATION_COMPLETED``), so the epoch-end handlers are not in it; the first
  iteration of every later epoch (the loader's workers starting again) is left out too, which only the
  small dataset's 25-iteration epochs have. Validation never runs. A disk cache is filled before the first
  step, so every timed iteration reads a full cache (steady state);
* ``scale_throughput_ratio``: large images/s over small images/s, with a 95 % bootstrap interval
  resampling each run's iterations apart (target >= 0.9);
* ``scale_peak_memory_gb``: the large run's peak memory of the process tree (the trainer and its
  DataLoader workers), summed over its processes from ``/proc/<pid>/smaps_rollup`` every ``--sample_s``
  seconds as proportional set size (PSS: a page shared by the trainer and its forked workers counts once,
  split among them); the summed resident sets (RSS, shared pages counted in every process) and the
  kernel's high-water marks of the trainer and its largest worker (``getrusage``, exact but per process)
  are reported beside it. A peak shorter than the sampling interval can be missed. GB = 1e9 bytes
  (target <= 8);
* the one-time costs apart: generating each dataset (recorded when it was written; a complete folder is
  reused, a partial one completed), the input check, and building the caches (``cache_build_s``). A
  slice's disk cache is deleted once it is measured (~32 GB at the full size; the datasets ~3.5 GB stay).

Results go to ``--out``, or with ``--publish`` (full budget only) to
``bundles/abn_classification/docs/results/dataset_scale.json``; the last line printed is the report as
JSON. Linux only (``/proc``). Usage::

    python -m monai_xai.experiments dataset_scale run --publish      # 80,000 vs 1,000 at 224 px, batch 32
    python -m monai_xai.experiments dataset_scale run --n_large 300 --n_small 60 --size 64 --batch_size 4 \\
        --iterations 2 --warmup 1 --runs /tmp/scale --out /tmp/scale.json          # a smoke test
    python -m monai_xai.experiments dataset_scale collect --runs runs/experiments/dataset_scale --out s.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from monai_xai.errors import InputError

from .results import (
    REPO,
    Block,
    add_output_arguments,
    bundle_results,
    fmt,
    fmt_ci,
    output_path,
    read_json,
    refuse_short_publish,
    study_parser,
    verdict_cell,
    write_results,
)

__all__ = [
    "BLOCKS",
    "FULL_BUDGET",
    "PUBLISHED",
    "TARGETS",
    "TreeMemory",
    "collect",
    "generate_dataset",
    "main",
    "render",
    "run",
    "train_slice",
]

PUBLISHED = "bundles/abn_classification/docs/results/dataset_scale.json"
#: the peak memory is at most its target, the throughput ratio at least its own
TARGETS = {"scale_peak_memory_gb": 8.0, "scale_throughput_ratio": 0.9}
#: the published run's settings; ``--publish`` refuses less. 60 timed iterations (1,920 images per slice,
#: about 4 minutes of float32 ABN training at 224 px on two cores) give the throughput ratio a bootstrap
#: interval a few percent wide; the cache is filled for the whole dataset either way, so more iterations
#: would add time, not memory.
FULL_BUDGET = {"n_large": 80_000, "n_small": 1_000, "size": 224, "iterations": 60, "batch_size": 32}
RUNS = ("small", "large")
#: phantoms generated (and recorded) together: a crash loses at most one chunk's work
CHUNK = 500
N_BOOT = 2000
_GB = 1e9
_ABN_TRAIN = REPO / "bundles" / "abn_classification" / "configs" / "train.json"
_META = "dataset.json"


# ---- the datasets ----------------------------------------------------------------------------------------


def _held_out(n: int) -> int:
    """Validation (and test) images of an ``n``-image dataset."""
    return min(200, n // 10)


def _write_chunk(folder: Path, chunk: int, n: int, size: int, seed: int) -> None:
    """Phantoms ``chunk * CHUNK`` onwards as PNG (each written atomically), then the chunk's rows."""
    from PIL import Image

    from monai_xai.data.synthetic import make_phantoms
    from monai_xai.utils.atomic import atomic_path, atomic_write_text

    first = chunk * CHUNK
    count = min(CHUNK, n - first)
    chunk_seed = int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0])
    phantoms = make_phantoms(count, size=size, seed=chunk_seed)
    rows = []
    for i in range(count):
        image, mask = f"images/{first + i:06d}.png", f"masks/{first + i:06d}.png"
        for name, array in (
            (image, np.round(phantoms.images[i, 0] * 255)),
            (mask, phantoms.masks[i, 0] * 255),
        ):
            with atomic_path(folder / name) as tmp:
                Image.fromarray(array.astype(np.uint8)).save(tmp, format="PNG")
        rows.append(f"{image},{mask},{int(phantoms.labels[i])}\n")
    atomic_write_text(folder / "chunks" / f"{chunk:05d}.csv", "".join(rows))


def generate_dataset(folder: Path, n: int, size: int = 224, seed: int = 0, workers: int = 1) -> dict:
    """Write ``n`` phantoms with masks, ``labels.csv`` and ``splits.json`` into ``folder`` once.

    A complete folder (its ``dataset.json`` names the same ``n``, ``size`` and ``seed``) is reused as it
    is; a partial one is completed chunk by chunk (a chunk whose rows are recorded is done). Returns the
    folder's record, with the seconds its generation took.

    Args:
        folder: the dataset's folder.
        n: images (at least 10).
        size: their side in pixels.
        seed: the phantoms' seed.
        workers: processes that write chunks.
    """
    from PIL import Image  # noqa: F401  (imported before the workers fork, so that they start at once)

    from monai_xai.data.synthetic import make_phantoms  # noqa: F401
    from monai_xai.utils.atomic import atomic_write_json, atomic_write_text

    if n < 10:
        raise InputError(None, f"a dataset needs at least 10 images (train, validation, test), got {n}")
    settings = {"n": n, "size": size, "seed": seed}
    meta = folder / _META
    if meta.is_file():
        record = json.loads(meta.read_text())
        if {k: record.get(k) for k in settings} != settings:
            raise InputError(meta, f"holds another dataset ({record}), not {settings}: choose another folder")
        return {**record, "reused": True}
    start = time.perf_counter()
    chunks = [c for c in range(math.ceil(n / CHUNK)) if not (folder / "chunks" / f"{c:05d}.csv").is_file()]
    resumed = len(chunks) < math.ceil(n / CHUNK)
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for done in [pool.submit(_write_chunk, folder, c, n, size, seed) for c in chunks]:
                done.result()
    else:
        for c in chunks:
            _write_chunk(folder, c, n, size, seed)
    rows = "".join((folder / "chunks" / f"{c:05d}.csv").read_text() for c in range(math.ceil(n / CHUNK)))
    atomic_write_text(folder / "labels.csv", "image,mask,label\n" + rows)
    images = [row.split(",")[0] for row in rows.splitlines()]
    k = _held_out(n)
    splits = {"seed": seed, "test": images[n - k :], "folds": [images[n - 2 * k : n - k]]}
    atomic_write_text(folder / "splits.json", json.dumps(splits, indent=1))
    record = {**settings, "seconds": round(time.perf_counter() - start, 1), "resumed": resumed}
    atomic_write_json(meta, record, indent=1)
    return {**record, "reused": False}


# ---- one epoch-slice of the bundle's trainer, in this process ------------------------------------------


def _timed_indices(epochs: Sequence[int], warmup: int) -> list[int]:
    """The iterations timed, by the epoch of each: after the warm-up (at least the first), and none that
    starts an epoch (its batch waits for the loader's workers to start)."""
    return [i for i in range(max(warmup, 1), len(epochs)) if epochs[i] == epochs[i - 1]]


def _bundle_parser(args: argparse.Namespace, data: Path, out: Path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(_ABN_TRAIN))
    settings = {
        "dataset": data.name, "dataset_dir": str(data), "output_dir": str(out),
        "spatial_size": [args.size, args.size], "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "max_epochs": args.warmup + 2 * args.iterations, "val_interval": 10**6, "resume": False,
        "cache": args.cache,
    }  # fmt: skip
    if args.cache_budget_gb is not None:
        settings["cache_budget_gb"] = args.cache_budget_gb
    if args.device is not None:
        settings["device"] = f"$torch.device('{args.device}')"
    parser.update(settings)
    return parser


def _choice(dataset) -> dict:
    choice = getattr(dataset, "cache_choice", None)
    if choice is None:
        return {"mode": type(dataset).__name__}
    total = choice.total_bytes
    return {
        "mode": choice.mode,
        "items": choice.n_items,
        "gb": None if total is None else round(total / _GB, 3),
        "reason": choice.reason,
    }


def train_slice(args: argparse.Namespace) -> dict:
    """``--warmup`` + ``--iterations`` steps of the ABN bundle's trainer on ``--data`` into ``--out``; the
    seconds of each setup stage and of each iteration, and this process's and its workers' peak RSS.

    Args:
        args: the ``slice`` command line.
    """
    import resource

    from ignite.engine import Events

    marks: dict[str, float] = {}
    start = time.perf_counter()
    parser = _bundle_parser(args, args.data, args.out / "trainer")
    parser.get_parsed_content("initialize")  # claims the run folder, sets the seed
    for stage, key in (
        ("input_check_s", "splits"),
        ("train_cache_s", "train#cache"),
        ("val_cache_s", "validate#dataset"),
    ):
        begin = time.perf_counter()
        parser.get_parsed_content(key)
        marks[stage] = round(time.perf_counter() - begin, 2)
    trainer = parser.get_parsed_content("train#trainer")
    marks["setup_s"] = round(time.perf_counter() - start, 2)
    if trainer.state.epoch_length < 2:
        raise InputError(
            args.data, f"an epoch of {trainer.state.epoch_length} step times nothing: more images"
        )
    iterations: list[dict] = []
    trainer.add_event_handler(
        Events.GET_BATCH_STARTED,
        lambda e: iterations.append({"epoch": e.state.epoch, "start": time.perf_counter()}),
    )

    def completed(engine) -> None:
        iterations[-1]["seconds"] = time.perf_counter() - iterations[-1].pop("start")
        if len(_timed_indices([it["epoch"] for it in iterations], args.warmup)) >= args.iterations:
            engine.terminate()

    trainer.add_event_handler(Events.ITERATION_COMPLETED, completed)
    trainer.run()
    record = {
        "data": str(args.data),
        "n_train": len(parser.get_parsed_content("train#cache#data")),
        "batch_size": args.batch_size,
        "size": args.size,
        "num_workers": args.num_workers,
        "device": str(parser.get_parsed_content("device")),
        "epoch_length": trainer.state.epoch_length,
        "train_cache": _choice(parser.get_parsed_content("train#cache")),
        "val_cache": _choice(parser.get_parsed_content("validate#dataset")),
        **marks,
        "warmup": args.warmup,
        "iterations": [{"epoch": it["epoch"], "seconds": round(it["seconds"], 5)} for it in iterations],
        # kilobytes on Linux: the kernel's high-water marks of this process and of its largest child
        "trainer_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / _GB, 3),
        "worker_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / _GB, 3),
    }
    write_results(record, args.out / "slice.json")
    return record


# ---- the process tree's memory -------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    """Every process's children, from ``/proc/<pid>/stat``."""
    found: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:  # a process may end between the listing and the read
            ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found.setdefault(ppid, []).append(int(entry.name))
    return found


def _rss_pss(pid: int) -> tuple[int, int]:
    """A process's resident and proportional set sizes in bytes (0, 0 once it has ended)."""
    values = {"Rss:": 0, "Pss:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[0] in values:
                values[fields[0]] = int(fields[1]) * 1024
    except (OSError, ValueError):
        pass
    return values["Rss:"], values["Pss:"]


class TreeMemory:
    """The peak summed RSS and PSS of a process and its descendants, sampled every ``interval`` seconds.

    Args:
        pid: the root process.
        interval: seconds between samples.
    """

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def sample(self) -> tuple[int, int]:
        """The tree's summed RSS and PSS now."""
        children, tree, rss, pss = _children(), [self.pid], 0, 0
        while tree:
            pid = tree.pop()
            tree += children.get(pid, [])
            r, p = _rss_pss(pid)
            rss, pss = rss + r, pss + p
        return rss, pss

    def _watch(self) -> None:
        while not self._stop.is_set():
            rss, pss = self.sample()
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def to_dict(self) -> dict:
        return {
            "peak_tree_pss_gb": round(self.peak_pss / _GB, 3),
            "peak_tree_rss_gb": round(self.peak_rss / _GB, 3),
            "samples": self.samples,
            "interval_s": self.interval,
        }


def _slice_argv(args: argparse.Namespace, data: Path, out: Path) -> list[str]:
    argv = [sys.executable, "-m", "monai_xai.experiments", "dataset_scale", "slice", "--data", str(data)]
    argv += ["--out", str(out), "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    argv += ["--batch_size", str(args.batch_size), "--size", str(args.size)]
    argv += ["--num_workers", str(args.num_workers), "--cache", args.cache]
    if args.cache_budget_gb is not None:
        argv += ["--cache_budget_gb", str(args.cache_budget_gb)]
    if args.device is not None:
        argv += ["--device", args.device]
    return argv


def _run_slice(args: argparse.Namespace, name: str, data: Path) -> None:
    """One ``slice`` in a child process, its tree's memory sampled; its log in ``<runs>/<name>.log``."""
    out = args.runs / name
    if out.exists():
        shutil.rmtree(out)  # a rerun measures again, from an empty cache
    out.mkdir(parents=True)
    log = args.runs / f"{name}.log"
    with open(log, "w") as handle:
        child = subprocess.Popen(
            _slice_argv(args, data, out), stdout=handle, stderr=subprocess.STDOUT, cwd=REPO
        )
        with TreeMemory(child.pid, args.sample_s) as memory:
            code = child.wait()
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise InputError(log, f"the {name} slice failed (exit {code}):\n{tail}")
    write_results(memory.to_dict(), out / "memory.json")
    shutil.rmtree(out / "trainer" / "cache", ignore_errors=True)  # measured; ~32 GB at the full size


# ---- the report ------------------------------------------------------------------------------------------


def _timed(record: dict) -> np.ndarray:
    """Seconds of a slice's timed iterations."""
    iterations = record["iterations"]
    return np.asarray(
        [
            iterations[i]["seconds"]
            for i in _timed_indices([it["epoch"] for it in iterations], record["warmup"])
        ]
    )


def _throughput_ratio(small: np.ndarray, large: np.ndarray) -> dict:
    """Large images/s over small images/s (small mean seconds over large), each run's iterations resampled
    apart (they ran in different processes, nothing pairs them)."""
    from monai_xai.metrics.uncertainty import bootstrap_ci

    seconds, run = np.concatenate([small, large]), np.r_[np.zeros(small.size), np.ones(large.size)]

    def ratio(s: np.ndarray, r: np.ndarray) -> float:
        return float(s[r == 0].mean() / s[r == 1].mean())

    if min(small.size, large.size) < 2:
        return {"mean": ratio(seconds, run), "ci95": None, "n": int(seconds.size)}
    return bootstrap_ci(ratio, seconds, run, stratify=1, n_boot=N_BOOT).to_dict()


def collect(runs: Path) -> dict:
    """The report of a run folder of ``run``: each run's costs, speed and memory, and the two ratios.

    Args:
        runs: the run folder.
    """
    hint = "run `python -m monai_xai.experiments dataset_scale run`"
    settings = read_json(runs / "run.json", hint)
    report: dict = {"settings": settings["settings"], "runs": {}}
    timed = {}
    for name in RUNS:
        record = read_json(runs / name / "slice.json", hint)
        memory = read_json(runs / name / "memory.json", hint)
        timed[name] = _timed(record)
        report["runs"][name] = {
            "n_images": settings["datasets"][name]["n"],
            "n_train": record["n_train"],
            "generation_s": settings["datasets"][name]["seconds"],
            "input_check_s": record["input_check_s"],
            "cache_build_s": round(record["train_cache_s"] + record["val_cache_s"], 2),
            "setup_s": record["setup_s"],
            "train_cache": record["train_cache"],
            "val_cache": record["val_cache"],
            "epoch_length": record["epoch_length"],
            "timed_iterations": int(timed[name].size),
            "images_per_s": round(record["batch_size"] / float(timed[name].mean()), 2),
            **memory,
            "trainer_peak_rss_gb": record["trainer_peak_rss_gb"],
            "worker_peak_rss_gb": record["worker_peak_rss_gb"],
        }
    report["device"] = read_json(runs / "large" / "slice.json", hint)["device"]
    report["scale_peak_memory_gb"] = report["runs"]["large"]["peak_tree_pss_gb"]
    report["scale_throughput_ratio"] = _throughput_ratio(timed["small"], timed["large"])
    report["targets"] = TARGETS
    ratio = report["scale_throughput_ratio"]
    report["verdicts"] = {
        "scale_peak_memory_gb": "met"
        if report["scale_peak_memory_gb"] <= TARGETS["scale_peak_memory_gb"]
        else "missed",
        "scale_throughput_ratio": verdict_cell(ratio, TARGETS["scale_throughput_ratio"]),
    }
    report["environment"] = settings["environment"]
    return report


def run(args: argparse.Namespace) -> dict:
    """Generate the datasets where missing, train a slice on each in its own process, then collect.

    Args:
        args: the ``run`` command line.
    """
    from monai_xai.benchmarking import environment, load_average, warn_if_busy

    load_start = load_average()
    warn_if_busy(load_start, "and the images/s are unreliable")
    data_root = args.data_root or args.runs / "data"
    datasets = {}
    for name, n in (("small", args.n_small), ("large", args.n_large)):
        folder = data_root / f"phantom{args.size}_{n}"
        datasets[name] = {
            "folder": str(folder),
            **generate_dataset(folder, n, args.size, args.seed, args.gen_workers),
        }
        print(f"[data] {name}: {json.dumps(datasets[name])}", file=sys.stderr, flush=True)
    for name in RUNS:
        _run_slice(args, name, Path(datasets[name]["folder"]))
        print(f"[slice] {name} done", file=sys.stderr, flush=True)
    settings = {
        key: getattr(args, key) for key in ("iterations", "warmup", "batch_size", "size", "num_workers")
    }
    settings.update(cache=args.cache, cache_budget_gb=args.cache_budget_gb, sample_s=args.sample_s)
    record = {
        "settings": settings,
        "datasets": datasets,
        "environment": environment(load_start, load_average()),
    }
    write_results(record, args.runs / "run.json")
    return collect(args.runs)


def render(report: dict) -> str:
    """The two runs side by side (costs, images/s, memory) and the two figures against their targets."""
    runs = report["runs"]
    rows = [
        "| dataset | training images | cache (train) | generation s | cache build s | images/s "
        "| peak memory GB (PSS, tree) | peak RSS GB (tree) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in RUNS:
        r = runs[name]
        rows.append(
            f"| {r['n_images']} images | {r['n_train']} | {r['train_cache']['mode']} "
            f"| {fmt(r['generation_s'], 0)} | {fmt(r['cache_build_s'], 1)} | {fmt(r['images_per_s'], 2)} "
            f"| {fmt(r['peak_tree_pss_gb'], 2)} "
            f"| {fmt(r['peak_tree_rss_gb'], 2)} |"
        )
    targets, verdicts, s = report["targets"], report["verdicts"], report["settings"]
    env = report["environment"]
    rows += [
        "",
        f"Peak memory of the large run: {fmt(report['scale_peak_memory_gb'], 2)} GB (target ≤ "
        f"{targets['scale_peak_memory_gb']:g}: {verdicts['scale_peak_memory_gb']}); images/s ratio "
        f"large/small {fmt_ci(report['scale_throughput_ratio'])} (target ≥ "
        f"{targets['scale_throughput_ratio']:g}: {verdicts['scale_throughput_ratio']}). {s['iterations']} "
        f"timed iterations at batch {s['batch_size']}, {s['size']} px, {s['num_workers']} workers, device "
        f"{report['device']}; {env['threads']} threads, load {env['loadavg_1min_at_start']} at start and "
        f"{env['loadavg_1min_at_end']} at end.",
    ]
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Block] = {"dataset_scale": bundle_results("abn_classification", "dataset_scale", render)}


def _add_slice_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, default=FULL_BUDGET["iterations"], help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
    parser.add_argument("--batch_size", type=int, default=FULL_BUDGET["batch_size"])
    parser.add_argument("--size", type=int, default=FULL_BUDGET["size"], help="image side in pixels")
    parser.add_argument("--num_workers", type=int, default=2, help="the bundle's DataLoader workers")
    parser.add_argument("--cache", default="auto", help="the bundle's cache mode (auto, memory, disk, none)")
    parser.add_argument(
        "--cache_budget_gb", type=float, help="the bundle's cache budget (its default if unset)"
    )
    parser.add_argument("--device", help="the training device (the bundle's default if unset)")


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("dataset_scale", __doc__)
    run_parser = commands.add_parser("run", help="generate the datasets, train a slice on each, collect")
    run_parser.add_argument(
        "--runs", type=Path, default=REPO / "runs" / "experiments" / "dataset_scale", help="the run folder"
    )
    run_parser.add_argument(
        "--data_root", type=Path, help="where the datasets are (made): <runs>/data by default"
    )
    run_parser.add_argument(
        "--n_large", type=int, default=FULL_BUDGET["n_large"], help="images of the large one"
    )
    run_parser.add_argument(
        "--n_small", type=int, default=FULL_BUDGET["n_small"], help="images of the small one"
    )
    run_parser.add_argument("--seed", type=int, default=0, help="the phantoms' seed")
    run_parser.add_argument(
        "--gen_workers", type=int, default=os.cpu_count() or 1, help="generating processes"
    )
    run_parser.add_argument("--sample_s", type=float, default=0.5, help="seconds between memory samples")
    _add_slice_options(run_parser)
    add_output_arguments(run_parser, published=PUBLISHED)
    collect_parser = commands.add_parser("collect", help="a run folder's records into the results file")
    collect_parser.add_argument("--runs", type=Path, required=True, help="the run folder of run")
    add_output_arguments(collect_parser, published=PUBLISHED)
    slice_parser = commands.add_parser("slice", help="one epoch-slice in this process (what run starts)")
    slice_parser.add_argument("--data", type=Path, required=True, help="the dataset folder (labels.csv)")
    slice_parser.add_argument("--out", type=Path, required=True, help="the slice's folder")
    _add_slice_options(slice_parser)
    args = parser.parse_args(argv)
    for key in ("runs", "data_root", "data", "out"):  # the slices run from the repository
        if getattr(args, key, None) is not None:
            setattr(args, key, getattr(args, key).resolve())
    if args.command == "slice":
        print(json.dumps({k: v for k, v in train_slice(args).items() if k != "iterations"}))
        return 0
    path = output_path(args, PUBLISHED)  # before the work: a missing --out fails at once
    if args.command == "run":
        short = [
            f"--{k} {getattr(args, k)} (needs {v})" for k, v in FULL_BUDGET.items() if getattr(args, k) != v
        ]
        short += ["--cache_budget_gb"] if args.cache_budget_gb is not None else []
        short += [f"--cache {args.cache}"] if args.cache != "auto" else []
        refuse_short_publish(args.publish, short)
        report = run(args)
    else:
        report = collect(args.runs)
    write_results(report, path, publish=args.publish)
    print(json.dumps(report))
    return 0
