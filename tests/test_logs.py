"""Logging is set up by the entry points only (`utils.logs`): importing the worker's modules changes
nothing."""

import json
import subprocess
import sys

import config

# Imports every module of the worker (bootstrap.py and utils/ included) in a fresh interpreter, then
# reports what logging looks like. The RunPod SDK adds a root handler when it is imported: that one is
# counted first, as it is not the worker's doing.
IMPORT_ALL = """
import json, logging, pkgutil, importlib
import runpod
sdk_handlers = list(logging.root.handlers)
import bootstrap, config, utils
for module in pkgutil.walk_packages(utils.__path__, "utils."):
    importlib.import_module(module.name)
loggers = [logging.getLogger(name) for name in logging.root.manager.loggerDict]
ours = [l for l in loggers if isinstance(l, logging.Logger) and l.name.startswith("parakeet")]
print(json.dumps({
    "added_root_handlers": len([h for h in logging.root.handlers if h not in sdk_handlers]),
    "ours": {logger.name: [len(logger.handlers), logger.propagate, logger.level] for logger in ours},
}))
"""

CONFIGURED = """
import logging
from utils.logs import configure_logging
configure_logging()
logging.getLogger("parakeet.bootstrap").info("building the environment")
logging.getLogger("botocore").debug("a presigned URL")
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=config.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_importing_every_module_configures_no_logging() -> None:
    state = json.loads(run_python(IMPORT_ALL).stdout.splitlines()[-1])
    assert state["added_root_handlers"] == 0
    assert "parakeet.bootstrap" in state["ours"]
    assert all(value == [0, True, 0] for value in state["ours"].values()), state["ours"]


def test_the_entry_points_set_up_logs_the_bootstrap_shares_and_quiet_the_http_libraries() -> None:
    done = run_python(CONFIGURED)
    assert done.stdout == ""
    assert "INFO parakeet.bootstrap[" in done.stderr
    assert "building the environment" in done.stderr
    assert "presigned" not in done.stderr
