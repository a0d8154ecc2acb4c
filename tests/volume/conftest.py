"""Fixtures of the volume-environment tests: a wheelhouse of stand-in wheels and a scratch volume."""

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bootstrap_wheels import build_wheelhouse


@pytest.fixture(scope="module")
def wheelhouse() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bootstrap-wheels-"))
    try:
        build_wheelhouse(path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def volume() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bootstrap-volume-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def isolated_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets a test activate environments: sys.path and HF_HOME are restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("HF_HOME", "set-by-the-test")
