"""The README and docs/ tell the truth: every job example is accepted by the worker's validation, the
demo output shown is what `make demo` prints, and every link into the repository leads somewhere."""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import config
from tools.reference import defaults_environment
from utils.contract import validation
from utils.sources import s3, url_policy

DOCUMENTS = [config.REPO_ROOT / "README.md", *sorted((config.REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```json\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
# What changes from run to run: the time each stage took.
TIMINGS = ("processing_seconds", "real_time_factor")


def json_blocks(path: Path) -> list[str]:
    return FENCE.findall(path.read_text(encoding="utf-8"))


def job_examples() -> list[tuple[str, str]]:
    """(where, text) of every JSON block that is a job: one that names an "input"."""
    return [
        (f"{path.name}#{index}", block)
        for path in DOCUMENTS
        for index, block in enumerate(json_blocks(path))
        if '"input"' in block
    ]


def test_the_documents_hold_job_examples() -> None:
    assert len(job_examples()) >= 8  # the pattern finds them


@pytest.mark.parametrize(("where", "block"), job_examples(), ids=[where for where, _ in job_examples()])
def test_every_job_example_is_valid_input(where: str, block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    job = json.loads(block)
    assert set(job) == {"input"}, where
    if "model" in job["input"]:  # valid on a worker that serves the model it names
        monkeypatch.setattr(config, "PARAKEET_MODELS", (job["input"]["model"],))
    request = validation.parse_input(job["input"])
    # The URLs are checked as a fetch would check their form (an s3:// bucket name, say), without a lookup.
    urls = [item.source for item in request.items if item.source_field == "audio_url"]
    for url in [*urls, *([request.output_url] if request.output_url else [])]:
        if url.startswith("s3://"):
            s3.parse_s3_uri(url)
        else:
            url_policy.parse_http_url(url)


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: None if key in TIMINGS else without_timings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value


def test_the_demo_output_shown_is_what_make_demo_prints() -> None:
    makefile = (config.REPO_ROOT / "Makefile").read_text()
    model = re.search(r"^DEMO_MODEL := (.+)$", makefile, flags=re.MULTILINE).group(1)
    sample = re.search(r"^DEMO_AUDIO := (.+)$", makefile, flags=re.MULTILINE).group(1)
    assert "$(PY) -m tools.transcribe_file $(DEMO_AUDIO) --timestamps" in makefile
    environment = defaults_environment()
    printed = subprocess.run(
        [sys.executable, "-m", "tools.transcribe_file", sample, "--timestamps"],
        cwd=config.REPO_ROOT,
        env={**environment, "PARAKEET_MODEL": model},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    real = json.loads(printed[printed.index("{\n") :])
    [shown] = [json.loads(block) for block in json_blocks(DOCUMENTS[0]) if '"success": true' in block][:1]
    assert without_timings(shown) == without_timings(real)
    assert set(shown["meta"]["processing_seconds"]) == set(real["meta"]["processing_seconds"])


@pytest.mark.parametrize("document", DOCUMENTS, ids=[path.name for path in DOCUMENTS])
def test_links_into_the_repository_lead_somewhere(document: Path) -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        assert (document.parent / target).exists(), f"{document.name} links to {target}"
