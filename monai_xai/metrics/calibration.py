"""Calibration of class probabilities: top-label ECE, reliability curves and temperature scaling.

A probability that a clinician reads as "80 %" should be right about 80 % of the time. The expected
calibration error (ECE) here is the *top-label* one (Guo et al. 2017): the confidence of a sample is its
largest class probability, it is correct when the argmax equals the label, and the samples are binned by
confidence. For a binary problem that is the confidence of the predicted class (>= 0.5), not the
probability of class 1.

MONAI's ``CalibrationErrorMetric`` bins each channel of ``(B, C, spatial...)`` probabilities against a
one-hot target, i.e. it computes a per-class (class-wise) ECE. Top-label ECE is fed to it as a single
channel: ``y_pred`` is the confidence and ``y`` the correctness, both shaped ``(1, 1, N)`` (one "image"
whose N "pixels" are the samples), which makes MONAI's per-channel ECE exactly the top-label ECE. MONAI's
bins are ``[left, right)`` over [0, 1] with the last one closed at 1, and it computes in float32.

Temperature scaling (Guo et al. 2017) divides the logits by one scalar T fitted on the validation split by
minimising the negative log-likelihood; it changes no argmax, only the confidence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from monai.metrics import CalibrationErrorMetric
from monai.metrics.calibration import calibration_binning
from monai.utils import look_up_option

__all__ = [
    "TEMPERATURE_BOUNDS",
    "apply_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "reliability_curve",
    "top_label_confidence",
]

_PROB_TOLERANCE = 1e-4
_LOG_FLOOR = 1e-12


def _as_numpy(values: Any) -> np.ndarray:
    detach = getattr(values, "detach", None)
    if detach is not None:
        values = detach().float().cpu().numpy()
    return np.asarray(values)


def _probabilities(probs: Any) -> np.ndarray:
    """(N, C) float64 probabilities; (N,) is read as the probability of class 1 of a binary problem."""
    p = _as_numpy(probs).astype(np.float64)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with C >= 2 or (N,), got {p.shape}")
    if not _looks_like_probabilities(p):
        raise ValueError("probs must be probabilities in [0, 1] with rows summing to 1 (softmax the logits)")
    return p


def _looks_like_probabilities(values: np.ndarray) -> bool:
    return bool(
        values.size
        and np.all(values >= 0.0)
        and np.all(values <= 1.0)
        and np.allclose(values.sum(axis=1), 1.0, atol=_PROB_TOLERANCE)
    )


def _labels(labels: Any, n: int, num_classes: int) -> np.ndarray:
    y = _as_numpy(labels).reshape(-1).astype(np.int64)
    if y.size != n:
        raise ValueError(f"got {y.size} labels and {n} probability rows")
    if not n:
        raise ValueError("no samples")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got {sorted(set(y.tolist()))}")
    return y


def top_label_confidence(labels: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct): the largest class probability of each sample and whether its argmax is right."""
    p = _probabilities(probs)
    y = _labels(labels, p.shape[0], p.shape[1])
    return p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)


def _monai_layout(labels: Any, probs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    confidence, correct = top_label_confidence(labels, probs)
    return (
        torch.from_numpy(confidence).float().view(1, 1, -1),
        torch.from_numpy(correct).float().view(1, 1, -1),
    )


def expected_calibration_error(labels: Any, probs: Any, n_bins: int = 15) -> float:
    """Top-label expected calibration error of ``probs`` (N, C) (or (N,) p(class 1)) against ``labels``.

    Sum over ``n_bins`` equal-width confidence bins of (share of samples in the bin) x |mean confidence -
    accuracy|. Computed by ``monai.metrics.CalibrationErrorMetric`` (``calibration_reduction="expected"``),
    which itself is a per-class ECE over the channels of its input; it is given the confidence as the one
    channel and the correctness as its target (see the module docstring), so its value is the top-label ECE.
    """
    y_pred, y = _monai_layout(labels, probs)
    metric = CalibrationErrorMetric(n_bins, calibration_reduction="expected", metric_reduction="mean")
    metric(y_pred=y_pred, y=y)
    return float(metric.aggregate())


def reliability_curve(labels: Any, probs: Any, n_bins: int = 15) -> dict[str, Any]:
    """Top-label reliability curve for a reliability diagram, binned by MONAI's ``calibration_binning``.

    Returns lists of length ``n_bins``: ``bin_centres``, ``confidence`` (mean confidence of the bin),
    ``accuracy`` (share correct in the bin) and ``counts``; ``confidence`` and ``accuracy`` are NaN for an
    empty bin. Also ``bin_edges`` (n_bins + 1), ``n`` and ``ece`` (the ECE of these bins).
    """
    y_pred, y = _monai_layout(labels, probs)
    mean_p, mean_gt, counts = (t[0, 0].double().numpy() for t in calibration_binning(y_pred, y, n_bins))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    filled = counts > 0
    ece = float(np.sum(counts[filled] * np.abs(mean_p[filled] - mean_gt[filled])) / counts.sum())
    return {
        "bin_edges": edges.tolist(),
        "bin_centres": ((edges[:-1] + edges[1:]) / 2).tolist(),
        "confidence": mean_p.tolist(),
        "accuracy": mean_gt.tolist(),
        "counts": [int(c) for c in counts],
        "n": int(counts.sum()),
        "ece": ece,
    }


def _as_logits(values: Any, inputs: str) -> np.ndarray:
    """(N, C) float64 logits; probabilities (``inputs="probs"``, or detected by "auto") become their logs."""
    checked = look_up_option(inputs, ("auto", "logits", "probs"), default=None)
    if checked is None:
        raise ValueError(f"inputs must be 'auto', 'logits' or 'probs', got {inputs!r}")
    inputs = checked
    z = _as_numpy(values).astype(np.float64)
    if z.ndim == 1:
        if inputs == "logits":
            raise ValueError("logits must have shape (N, C); a 1-D input is read as p(class 1)")
        z = _probabilities(z)
        inputs = "probs"
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"expected (N, C) logits or probabilities with C >= 2, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits or probabilities contain NaN or infinite values")
    if inputs == "probs" or (inputs == "auto" and _looks_like_probabilities(z)):
        _probabilities(z)  # checks
        return np.log(np.clip(z, _LOG_FLOOR, None))
    return z


def negative_log_likelihood(
    labels: Any, logits_or_probs: Any, temperature: float = 1.0, inputs: str = "auto"
) -> float:
    """Mean negative log-likelihood of ``softmax(logits / temperature)`` at the labels."""
    z = _as_logits(logits_or_probs, inputs)
    y = _labels(labels, z.shape[0], z.shape[1])
    return _nll(z, y, temperature)


def _nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    log_p = torch.log_softmax(torch.from_numpy(z) / temperature, dim=1)
    return float(-log_p[torch.arange(y.size), torch.from_numpy(y)].mean())


#: The range :func:`fit_temperature` searches; a fit at either end means the NLL has no minimum inside it.
TEMPERATURE_BOUNDS = (0.05, 20.0)


def fit_temperature(
    logits_or_probs: Any,
    labels: Any,
    inputs: str = "auto",
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
) -> float:
    """Temperature T minimising the validation NLL of ``softmax(logits / T)`` (temperature scaling).

    ``logits_or_probs`` is (N, C) logits, or probabilities (rows in [0, 1] summing to 1, detected when
    ``inputs="auto"``; also (N,) p(class 1)), whose logs are then used as logits: softmax(log p / T) is the
    same as temperature-scaling the original logits. The NLL is convex in 1/T, so a bounded scalar search
    over log T (scipy's ``minimize_scalar``, ``method="bounded"``) finds the single minimum. T > 1 softens
    over-confident probabilities, T < 1 sharpens under-confident ones. Fit it on validation, never on test.
    """
    from scipy.optimize import minimize_scalar  # scipy.optimize only when a temperature is fitted

    low, high = bounds
    if not 0.0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    z = _as_logits(logits_or_probs, inputs)
    y = _labels(labels, z.shape[0], z.shape[1])
    result = minimize_scalar(
        lambda log_t: _nll(z, y, math.exp(log_t)),
        bounds=(math.log(low), math.log(high)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(math.exp(result.x))


def apply_temperature(probs_or_logits: Any, temperature: float, inputs: str = "auto") -> Any:
    """Calibrated probabilities ``softmax(logits / T)`` (probabilities in: their logs are the logits).

    Returns a float tensor for a tensor input, else a float64 numpy array, of shape (N, C) (also for a 1-D
    p(class 1) input). The argmax is unchanged.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = _as_logits(probs_or_logits, inputs)
    out = torch.softmax(torch.from_numpy(z) / temperature, dim=1).numpy()
    if isinstance(probs_or_logits, torch.Tensor):
        dtype = probs_or_logits.dtype if probs_or_logits.is_floating_point() else torch.float32
        return torch.from_numpy(out).to(dtype=dtype, device=probs_or_logits.device)
    return out
