"""The RunPod Hub files (.runpod/hub.json, .runpod/tests.json) checked against the code they describe:
every variable the Hub offers is one config.py reads, with config.py's default, and the Hub's test
job is the repository's test_input.json."""

import ast
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

import config

REPO_ROOT = config.REPO_ROOT
HUB = json.loads((REPO_ROOT / ".runpod" / "hub.json").read_text())
HUB_TESTS = json.loads((REPO_ROOT / ".runpod" / "tests.json").read_text())
HUB_ENV = {item["key"]: item["input"] for item in HUB["config"]["env"]}
CONFIG_READERS = {
    "_str",
    "_optional_str",
    "_int",
    "_float",
    "_bool",
    "_choice",
    "_auto_bool",
    "_list",
    "_path",
}
INPUT_TYPES = {"string": str, "number": (int, float), "boolean": bool}


def _reads_environment(function: ast.expr) -> bool:
    """Tells whether a call target reads an environment variable (os.environ.get, or config's readers)."""
    if isinstance(function, ast.Name):
        return function.id in CONFIG_READERS
    if isinstance(function, ast.Attribute):
        target = ast.unparse(function)
        return target in {"os.environ.get", "os.getenv"}
    return False


def config_environment() -> dict[str, str]:
    """Maps each environment variable config.py reads to the config constant it sets."""
    variables: dict[str, str] = {}
    for node in ast.parse((REPO_ROOT / "config.py").read_text()).body:
        if not (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            continue
        for call in ast.walk(node.value):
            if (
                isinstance(call, ast.Call)
                and _reads_environment(call.func)
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
            ):
                variables.setdefault(call.args[0].value, node.targets[0].id)
    return variables


def config_defaults(names: list[str]) -> dict[str, Any]:
    """Imports config.py in a fresh interpreter with none of its variables set; returns these constants."""
    environment = {key: value for key, value in os.environ.items() if key not in config_environment()}
    script = (
        "import json, sys, config\n"
        "print(json.dumps({name: getattr(config, name) for name in sys.argv[1:]}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        check=False,
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_hub_variables_are_read_by_config() -> None:
    read = config_environment()
    assert "PARAKEET_MODEL" in read  # the parser itself works
    assert sorted(set(HUB_ENV) - set(read)) == []
    assert len(HUB_ENV) == len(HUB["config"]["env"]), "a variable is listed twice"
    assert sorted(item["key"] for item in HUB_TESTS["config"]["env"] if item["key"] not in read) == []


def test_hub_defaults_are_config_defaults() -> None:
    constants = {key: config_environment()[key] for key in HUB_ENV}
    defaults = config_defaults(sorted(constants.values()))
    for key, entry in HUB_ENV.items():
        actual = defaults[constants[key]]
        if "default" not in entry:
            assert actual in (None, "", []), f"{key}: hub.json has no default, config.py uses {actual!r}"
        elif entry["type"] == "number":
            assert float(entry["default"]) == float(actual), (
                f"{key}: hub.json {entry['default']}, config {actual}"
            )
        elif isinstance(actual, list):
            # A comma-separated list variable: config holds the items.
            assert entry["default"] == ",".join(actual), (
                f"{key}: hub.json {entry['default']!r}, config {actual}"
            )
        else:
            assert entry["default"] == actual, f"{key}: hub.json {entry['default']!r}, config {actual!r}"


@pytest.mark.parametrize("key", sorted(HUB_ENV))
def test_hub_inputs_are_well_formed(key: str) -> None:
    entry = HUB_ENV[key]
    assert entry["type"] in INPUT_TYPES, entry
    assert entry["name"], entry
    assert entry["description"], entry
    if "default" in entry:
        assert isinstance(entry["default"], INPUT_TYPES[entry["type"]]), entry
    if "options" in entry:
        assert entry.get("default") in [option["value"] for option in entry["options"]], entry


def test_hub_listing() -> None:
    assert HUB["type"] == "serverless"
    assert HUB["category"] == "audio"
    assert HUB["config"]["runsOn"] == "GPU"
    assert HUB["iconUrl"].startswith("https://")
    assert HUB["config"]["allowedCudaVersions"] == HUB_TESTS["config"]["allowedCudaVersions"]


def test_allowed_cuda_versions_run_the_volume_torch_build() -> None:
    # A "+cu128" torch needs a driver for CUDA 12.8 or newer; hosts are picked by allowedCudaVersions.
    requirements = (REPO_ROOT / "requirements-volume.txt").read_text()
    builds = set(re.findall(r"^torch==[^\s#]*\+cu(\d+)(\d)\b", requirements, flags=re.MULTILINE))
    assert len(builds) == 1, (
        f"expected one pinned CUDA build of torch in requirements-volume.txt, found {builds}"
    )
    needed = tuple(int(part) for part in builds.pop())
    for version in HUB["config"]["allowedCudaVersions"]:
        assert tuple(int(part) for part in version.split(".")) >= needed, (
            f"CUDA {version} is older than torch's"
        )


def test_hub_test_job_is_test_input_json() -> None:
    test_input = json.loads((REPO_ROOT / "test_input.json").read_text())
    assert HUB_TESTS["tests"][0]["input"] == test_input["input"]
    for test in HUB_TESTS["tests"]:
        assert test["name"]
        assert isinstance(test["input"], dict)
        # Milliseconds; the first job on a fresh worker builds the volume environment and fetches the model.
        assert isinstance(test["timeout"], int), test["timeout"]
        assert test["timeout"] >= 10 * 60 * 1000, test["timeout"]
