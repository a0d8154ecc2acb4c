"""Shared pytest fixtures. Each section belongs to one area; keep sections apart.

Test helpers that are not fixtures (servers, the worker launcher, media) live in tests/support/.
"""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The worker runs from the repository root (`python handler.py`); tests import it the same way.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Before config is imported: every test (and every worker subprocess a test starts) uses the bundled
# models, and nothing may try the Hugging Face hub.
os.environ["PARAKEET_MODEL"] = str(REPO_ROOT / "tests" / "fixtures" / "parakeet-tdt-digits.nemo")
os.environ["DIARIZER_MODEL"] = str(REPO_ROOT / "tests" / "fixtures" / "sortformer-digits.nemo")
os.environ["HF_HUB_OFFLINE"] = "1"

import config  # after the variables above: config reads them at import

# --- Name resolution (tests/support/fake_dns.py) ---
from tests.support.fake_dns import fake_dns  # noqa: F401

# --- S3 server (tests/support/s3_server.py) ---
from tests.support.s3_server import denied_bucket, local_s3, loopback_only, s3_server  # noqa: F401

# --- Origin servers for the source tests (tests/support/origins.py) ---
pytest_plugins = ["tests.support.origins"]

# --- Jobs ---


@pytest.fixture
def job_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private TEMP_ROOT for the test's jobs; every job must leave it empty."""
    root = tmp_path_factory.mktemp("jobs")
    monkeypatch.setattr(config, "TEMP_ROOT", root)
    yield root
    assert list(root.iterdir()) == [], "a job left temporary files behind"


# --- Models ---


@pytest.fixture
def two_models(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The English test model (the default) and the multilingual one, served side by side."""
    served = (str(config.BUNDLED_TEST_MODEL), str(config.BUNDLED_MULTILINGUAL_TEST_MODEL))
    monkeypatch.setattr(config, "PARAKEET_MODELS", served)
    return served


# --- URL policy ---


@pytest.fixture
def local_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Admits http:// and loopback addresses (the local test servers), as the S3 fixture does."""
    monkeypatch.setattr(config, "ALLOW_HTTP", True)
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", True)
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", ())


@pytest.fixture
def production_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production defaults: https only, public addresses only, no host allowlist."""
    monkeypatch.setattr(config, "ALLOW_HTTP", False)
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", False)
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", ())
