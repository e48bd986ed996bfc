"""Finite-difference gradient checks shared by the layer and loss tests (float64)."""

from __future__ import annotations

import numpy as np

EPS = 1e-6


def numeric_grad(f, a, eps: float = EPS) -> np.ndarray:
    """Central-difference gradient of scalar f() with respect to contiguous `a` (perturbed in place)."""
    g = np.zeros(a.shape)
    flat = a.reshape(-1)  # a view of a contiguous array (NumPy or a device array)
    for i in range(flat.size):
        old = float(flat[i])
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        g.reshape(-1)[i] = (up - down) / (2 * eps)
    return g


def rel_error(a, b) -> float:
    """Largest difference relative to the largest magnitude (0 when both are 0)."""
    return float(np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(a) + np.abs(b))))
