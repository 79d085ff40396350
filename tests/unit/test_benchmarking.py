"""The machine record every benchmark writes beside its ratios."""

from __future__ import annotations

import builtins
import io

import pytest

from monai_xai import benchmarking


def test_cpu_description_reads_model_and_simd_flags(monkeypatch):
    cpuinfo = (
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n"
    )
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        return io.StringIO(cpuinfo) if str(path) == "/proc/cpuinfo" else real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    described = benchmarking.cpu_description()
    assert described["cpu_model"] == "Test CPU 9000"
    assert described["cpu_flags"] == ["avx2", "avx512f", "avx512_bf16", "amx_tile"]


def test_cpu_description_without_cpuinfo(monkeypatch):
    def missing(path, *args, **kwargs):
        raise FileNotFoundError(path)

    monkeypatch.setattr(builtins, "open", missing)
    assert benchmarking.cpu_description()["cpu_flags"] == []


def test_environment_records_the_machine():
    env = benchmarking.environment(0.5, 1.5)
    assert {"cpu_model", "cpu_flags", "cpu_supports_bf16", "threads", "torch"} <= set(env)
    assert env["loadavg_1min_at_start"] == 0.5 and env["loadavg_1min_at_end"] == 1.5


def test_ratio_interval_pairs_the_rounds():
    steady = benchmarking.ratio_interval([0.3] * 5, [0.1] * 5, n_boot=50)
    assert steady["mean"] == pytest.approx(3.0) and steady["ci95"] == pytest.approx([3.0, 3.0])
    noisy = benchmarking.ratio_interval([0.3, 0.6, 0.3, 0.9, 0.3], [0.1, 0.2, 0.1, 0.3, 0.1], n_boot=200)
    assert noisy["ci95"][0] <= 3.0 <= noisy["ci95"][1]
    assert benchmarking.ratio_interval([0.2], [0.1])["ci95"] is None


def test_machine_description_names_the_cpu_or_says_it_was_not_recorded():
    env = {"cpu_model": "AMD EPYC", "cpu_count": 2, "cpu_supports_bf16": False}
    assert benchmarking.machine_description(env) == "AMD EPYC, 2 cores, no native bfloat16"
    assert benchmarking.machine_description({**env, "cpu_supports_bf16": True}).endswith(", native bfloat16")
    assert benchmarking.machine_description(None) == benchmarking.machine_description({}) == "not recorded"
