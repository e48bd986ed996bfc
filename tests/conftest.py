"""Shared fixtures: the backend-parametrised ``xp`` and a CLI runner."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings
from typer.testing import CliRunner

from cvtool import backend

# CI runs are derandomised (the same examples every run), so a submission's CI result
# does not depend on luck; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """The array module, once per backend; cupy cases skip where no device answers."""
    if request.param == "cupy" and not backend.gpu_available():
        pytest.skip("CuPy or a CUDA device is not available")
    return backend.get_xp(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def cli(runner):
    """Invoke cvtool with arguments; returns the Result (stdout, stderr, exit_code apart)."""
    from cvtool.cli import app

    def invoke(*args, input=None, env=None):
        return runner.invoke(app, [str(a) for a in args], input=input, env=env)

    return invoke
