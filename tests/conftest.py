"""Shared fixtures: one composed config and one short default run per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def twin_executable(name: str = "twin") -> str:
    """The console script installed beside the interpreter running the tests."""
    exe = Path(sys.executable).with_name(name)
    if not exe.exists():
        pytest.fail(f"{exe} not found: install the project first (pip install -e '.[test]')")
    return str(exe)


@pytest.fixture(scope="session")
def twin_exe() -> str:
    return twin_executable()


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def day_result():
    """One day of the embedded default (feeder, scenario, firm contract), seed 42."""
    from twin.config import compose
    from twin.pipeline import run

    return run(compose(["sim=day", "output.progress=false"]))


@pytest.fixture(autouse=True)
def _no_mpl_windows(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
