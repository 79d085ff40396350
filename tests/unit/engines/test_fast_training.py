"""The fast path (precision and layout per device) and the safety nets around training on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_xai.data import DataLoader, dataset_splits, write_demo_dataset
from monai_xai.engines import FastPath
from monai_xai.errors import InputError, input_error_behind
from monai_xai.networks import get_classifier
from monai_xai.transforms import EnsureMaskd, LoadImageOrArrayd, check_splits
from monai_xai.utils import cpu_supports_bf16, to_float32

REPO = Path(__file__).resolve().parents[3]
BUNDLES = REPO / "bundles"
#: bf16 keeps 8 bits of mantissa: logits of an untrained ResNet18 ABN (|logit| < ~2) agree with float32
#: to within this absolute tolerance, and their softmax probabilities to within half of it.
BF16_LOGIT_ATOL = 0.1


def test_fast_path_resolves_per_device_and_network():
    net2d = get_classifier("dynamic", "resnet18", 2, 1, 2)
    net3d = get_classifier("baseline", "resnet18", 3, 1, 2)
    assert FastPath.resolve(False, "cpu", net2d) == FastPath("cpu")
    fast = FastPath.resolve(True, "cpu", net2d)
    assert fast.dtype == (torch.bfloat16 if cpu_supports_bf16() else None) and fast.channels_last
    assert not FastPath.resolve(True, "cpu", net3d).channels_last
    assert FastPath.resolve(True, "cuda", net2d).dtype == torch.float16
    x = torch.zeros(2, 1, 8, 8)
    assert fast.prepare_input(x).is_contiguous(memory_format=torch.channels_last)
    assert FastPath("cpu").prepare_input(x) is x
    from monai.data import MetaTensor

    assert type(FastPath("cpu").prepare_input(MetaTensor(x))) is torch.Tensor
    assert "channels-last" in fast.describe() and FastPath("cpu").describe() == "cpu float32"


def test_to_float32_keeps_the_structure_of_outputs():
    output = get_classifier("dynamic", "resnet18", 2, 1, 2).eval()(torch.rand(1, 1, 32, 32))
    cast = to_float32(type(output)(*(t.to(torch.bfloat16) for t in output)))
    assert type(cast) is type(output) and all(t.dtype == torch.float32 for t in cast)
    nested = to_float32(
        {
            "a": [torch.ones(1, dtype=torch.float16)],
            "n": torch.ones(1, dtype=torch.long),
            "d": torch.ones(1).double(),
        }
    )
    assert nested["a"][0].dtype == torch.float32 and nested["n"].dtype == torch.long
    assert nested["d"].dtype == torch.float64  # only what autocast reduced comes back


def test_bf16_and_fp32_logits_of_a_batch_agree():
    torch.manual_seed(0)
    network = get_classifier("dynamic", "resnet18", 2, 1, 2).eval()
    images = torch.rand(4, 1, 64, 64)
    bf16 = FastPath("cpu", torch.bfloat16, channels_last=True)
    with torch.no_grad():
        reference = network(images)
        bf16.prepare_network(network)
        with bf16.autocast():
            fast = to_float32(network(bf16.prepare_input(images)))
    for name in ("perception_logits", "attention_logits"):
        torch.testing.assert_close(
            getattr(fast, name), getattr(reference, name), atol=BF16_LOGIT_ATOL, rtol=0
        )
    probs = (torch.softmax(t.perception_logits, 1) for t in (fast, reference))
    torch.testing.assert_close(*probs, atol=BF16_LOGIT_ATOL / 2, rtol=0)
    torch.testing.assert_close(fast.attention_map, reference.attention_map, atol=0.05, rtol=0)


def test_a_dataset_reached_through_a_symbolic_link_keeps_its_split_file(tmp_path):
    write_demo_dataset(tmp_path / "real", n_train=4, n_val=2, n_test=2, size=24)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    parts = dataset_splits("csv", tmp_path / "link" / "labels.csv")
    assert [len(parts[s]) for s in ("train", "val", "test")] == [4, 2, 2]
    assert all(item["image"].startswith(str(tmp_path / "link")) for item in parts["test"])


def test_a_split_smaller_than_one_batch_is_refused_when_it_would_train_nothing():
    with pytest.raises(InputError, match=r"the train split has 3 items, fewer than one batch of 8"):
        DataLoader(list(range(3)), batch_size=8, drop_last=True, split="train")
    assert len(DataLoader(list(range(3)), batch_size=8, split="val")) == 1  # kept when nothing is dropped


def _write_constant_png(path: Path, size: int) -> None:
    Image.fromarray(np.full((size, size), 7, dtype=np.uint8)).save(path)


def test_check_splits_names_bad_items_skips_them_and_caches_its_verdict(tmp_path, caplog):
    write_demo_dataset(tmp_path / "demo", n_train=4, n_val=2, n_test=2, size=24)
    parts = dataset_splits("csv", tmp_path / "demo" / "labels.csv")
    bad = parts["test"][1]["image"]
    _write_constant_png(Path(bad), 24)
    calls = []

    def loader(item):
        calls.append(item["image"])
        return EnsureMaskd()(LoadImageOrArrayd(["image", "mask"])(item))

    cache = tmp_path / "cache"
    with pytest.raises(InputError) as info:
        check_splits(parts, loader, cache_dir=cache, num_classes=2, expected_channels=1)
    message = str(info.value)
    assert message.splitlines()[0].startswith("1 of 8 items cannot be used")
    assert message.splitlines()[-1] == f"  test: {bad}: image is constant (every value is 7)"
    assert len(calls) == 8
    kept = check_splits(
        parts, loader, cache_dir=cache, skip_bad_items=True, num_classes=2, expected_channels=1
    )
    assert len(calls) == 8, "the cached verdict is reused: nothing is loaded again"
    assert kept["input_check"] | {"seconds": 0} == {
        "checked": 8, "skipped": 1, "skipped_per_split": {"train": 0, "val": 0, "test": 1}, "seconds": 0,
        "cached": True,
    }  # fmt: skip
    assert bad not in [item["image"] for item in kept["test"]] and len(kept["train"]) == 4
    assert f"skipping test item: {bad}" in caplog.text
    os.utime(bad, ns=(time.time_ns(), time.time_ns() + 10**9))  # a changed file is checked again
    check_splits(parts, loader, cache_dir=cache, skip_bad_items=True, num_classes=2, expected_channels=1)
    assert len(calls) == 16


def test_input_error_behind_wrappers_and_worker_tracebacks():
    inner = InputError("/data/x.png", "image is constant")
    try:
        try:
            raise inner
        except InputError as e:
            raise RuntimeError("Failed to evaluate ConfigExpression") from e
    except RuntimeError as wrapped:
        assert input_error_behind(wrapped) == "/data/x.png: image is constant"
    worker = RuntimeError(
        "Caught InputError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1\nmonai_xai.errors.InputError: /data/y.png: mask has spatial size (2, 2)\n'
    )
    assert input_error_behind(worker) == "/data/y.png: mask has spatial size (2, 2)"
    assert input_error_behind(ValueError("unrelated")) is None


#: How a config names the lower-is-better comparison: an expression, or the function as a callable component.
LOWER_IS_BETTER = (
    "$monai_xai.bundle.lower_is_better",
    {"_target_": "monai_xai.bundle.lower_is_better", "_mode_": "callable"},
)


def test_trainers_whose_key_metric_is_a_loss_call_the_lowest_value_best():
    """MONAI compares key metrics higher-is-better unless told: the *highest* loss was logged as best."""
    offenders = []

    def visit(node, where):
        if isinstance(node, dict):
            if str(node.get("_target_", "")).endswith("Trainer") and "key_train_metric" in node:
                if node.get("metric_cmp_fn") not in LOWER_IS_BETTER:
                    offenders.append(where)
            for key, value in node.items():
                visit(value, f"{where}#{key}")

    for config in BUNDLES.glob("*/configs/*.json"):
        visit(json.loads(config.read_text()), str(config.relative_to(REPO)))
    assert not offenders


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import torch
    from monai_xai.data import DataLoader

    class Large(torch.utils.data.Dataset):  # batches that fill the result pipe
        def __len__(self):
            return 1000

        def __getitem__(self, i):
            return {"x": torch.zeros(4), "payload": "x" * 2**20}

    it = iter(DataLoader(Large(), batch_size=4, num_workers=2))
    next(it)
    print(" ".join(str(w.pid) for w in it._workers), flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_data_loader_workers_exit_when_the_trainer_is_killed(tmp_path):
    script = tmp_path / "loader.py"
    script.write_text(WORKER_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    workers = [int(pid) for pid in process.stdout.readline().split()]
    assert len(workers) == 2
    time.sleep(2)  # the workers fill the pipe with prefetched batches
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [pid for pid in workers if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "DataLoader workers outlived their killed parent"


def test_on_off_settings_from_the_command_line_mean_what_they_say():
    from monai_xai.flags import as_bool

    assert [as_bool(v) for v in ("false", "False", "0", "", False, 0)] == [False] * 6
    assert [as_bool(v) for v in ("true", "1", True, 1)] == [True] * 4
    with pytest.raises(ValueError, match="amp must be true or false, got 'fast'"):
        as_bool("fast", "amp")
    assert FastPath.resolve("false", "cpu", get_classifier("baseline", "resnet18", 2, 1, 2)) == FastPath(
        "cpu"
    )
