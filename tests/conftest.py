"""Shared pytest fixtures. Each section belongs to one area; keep sections apart."""

import os
import sys
from pathlib import Path

# The worker runs from the repository root (`python handler.py`); tests import it the same way.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Before config is imported: every test (and every worker subprocess a test starts) uses the bundled
# model, and nothing may try the Hugging Face hub.
os.environ["PARAKEET_MODEL"] = str(REPO_ROOT / "tests" / "fixtures" / "parakeet-tdt-digits.nemo")
os.environ["HF_HUB_OFFLINE"] = "1"

# --- Name resolution (tests/fake_dns.py) ---
from tests.fake_dns import fake_dns  # noqa: F401

# --- S3 server (tests/s3_server.py) ---
from tests.s3_server import denied_bucket, local_s3, loopback_only, s3_server  # noqa: F401
