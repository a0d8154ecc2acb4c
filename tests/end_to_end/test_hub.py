"""The RunPod Hub files (.runpod/hub.json, .runpod/tests.json) checked against the code they describe:
every variable the Hub offers is one config.py reads, with config.py's default, and the Hub's test
job is the repository's test_input.json."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import config
from tests.support.worker import job_queue, start_worker_loop, stop_worker
from tools.reference import defaults_environment

REPO_ROOT = config.REPO_ROOT
HUB = json.loads((REPO_ROOT / ".runpod" / "hub.json").read_text())
HUB_TESTS = json.loads((REPO_ROOT / ".runpod" / "tests.json").read_text())
HUB_ENV = {item["key"]: item["input"] for item in HUB["config"]["env"]}
CONFIG_READERS = {
    "_present",
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
    environment = defaults_environment()
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


def test_declared_defaults_are_what_config_reads_with_nothing_set() -> None:
    constants = config_environment()
    defaults = config_defaults(sorted(set(constants.values())))
    for name, variable in config.VARIABLES.items():
        actual = defaults[constants[name]]
        if variable.kind == "auto or boolean":
            assert (variable.default, actual) == ("auto", None), name
        elif name == "RUNPOD_WEBHOOK_POST_OUTPUT":
            assert (variable.default, actual) == (None, False), name
        elif isinstance(variable.default, tuple):
            assert actual == list(variable.default), name  # read back through JSON
        elif isinstance(variable.default, Path):
            assert actual == str(variable.default), name
        else:
            assert actual == variable.default, (
                f"{name}: declared {variable.default!r}, config reads {actual!r}"
            )


def documented_variables() -> list[str]:
    """The variables docs/configuration.md lists, in its order."""
    text = (REPO_ROOT / "docs" / "configuration.md").read_text()
    return re.findall(r"^\| `([A-Z0-9_]+)`", text, flags=re.MULTILINE)


def test_the_configuration_table_lists_exactly_what_config_reads() -> None:
    read = set(config_environment())
    documented = documented_variables()
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    assert sorted(read - set(documented)) == [], "read by config.py but not in docs/configuration.md"
    assert sorted(set(documented) - read) == [], "in docs/configuration.md but not read by config.py"
    assert set(config.VARIABLES) == read, "every variable config.py reads is declared"


def test_every_user_facing_variable_is_a_hub_setting() -> None:
    assert set(HUB_ENV) == {name for name, variable in config.VARIABLES.items() if variable.hub}
    for name, variable in config.VARIABLES.items():
        if variable.choices or variable.kind == "boolean":
            assert name not in HUB_ENV or "options" in HUB_ENV[name], f"{name} offers fixed values"


def test_the_generated_reference_is_up_to_date() -> None:
    environment = defaults_environment()
    checked = subprocess.run(
        [sys.executable, "-m", "tools.reference", "--check"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


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


def test_the_hub_test_job_passes_on_a_worker_loop_with_no_volume(tmp_path: Path) -> None:
    # As the Hub's test worker runs it: the SDK's worker loop, start-up checks included, and no network
    # volume (this environment has NeMo, so nothing is built; the build without one is tested in
    # tests/volume/test_activation.py). The bundled model stands in for the hub model.
    [test] = HUB_TESTS["tests"]
    assert not (tmp_path / "no-volume").exists()
    with job_queue([{"id": "hub-test", "input": test["input"]}]) as queue:
        worker = start_worker_loop(queue, tmp_path)
        try:
            assert queue.done.wait(timeout=180), "the worker posted no result"
        finally:
            output = stop_worker(worker)
    [result] = [post["output"] for post in queue.posts if post.get("status") != "IN_PROGRESS"]
    assert result["success"] is True, output[-3000:]
    assert result["text"] == "seven three nine two zero five"
    assert [word["word"] for word in result["timestamps"]["word"]] == result["text"].split()
