"""The command line of `python bootstrap.py`: build now (default), `--check`, `--force` or `--gc`."""

import argparse
import importlib.util
import json
import time
from collections.abc import Sequence
from typing import Any

from utils.errors import BootstrapError
from utils.volume.build import ensure_built
from utils.volume.gc import collect_garbage
from utils.volume.model import ensure_model, is_hub_name, model_marker, model_ready
from utils.volume.publish import find_ready
from utils.volume.settings import Settings, log
from utils.volume.spec import compute_spec


def check(settings: Settings) -> dict[str, Any]:
    """Describes the state of this worker's environment without changing anything.

    Args:
        settings: The settings.

    Returns:
        A JSON-ready status; `ready` is true when a published environment exists.
    """
    started = time.perf_counter()
    status: dict[str, Any] = {"ready": False, "root": str(settings.root)}
    status["nemo_importable_here"] = importlib.util.find_spec("nemo") is not None
    try:
        spec = compute_spec(settings)
        status["spec_id"] = spec.id
        env = find_ready(settings, spec)
    except BootstrapError as exc:
        status["error"] = str(exc)
        env = None
    if env is not None:
        status.update(
            ready=True,
            build_dir=str(env.build_dir),
            site_packages=str(env.site_packages),
            built_at=env.record.get("built_at"),
            versions=env.record.get("versions"),
            verification=env.record.get("verification"),
        )
    if is_hub_name(settings.model):
        status["model_ready"] = model_ready(model_marker(settings.root, settings.model))
    status["check_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: build now (default), `--check`, `--force` or `--gc`.

    Args:
        argv: Arguments (default: sys.argv[1:]).

    Returns:
        The exit status: 0 on success (for --check: ready), 1 otherwise.
    """
    parser = argparse.ArgumentParser(
        description="Build or inspect the torch/NeMo environment on the network volume."
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="print a JSON status; exit 0 when ready")
    action.add_argument("--force", action="store_true", help="build and publish a fresh environment")
    action.add_argument("--gc", action="store_true", help="remove leftovers of dead builds")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_config()
        if args.check:
            status = check(settings)
            print(json.dumps(status, sort_keys=True))
            return 0 if status["ready"] else 1
        if args.gc:
            removed = collect_garbage(settings)
            print(json.dumps({"removed": [str(path) for path in removed]}))
            return 0
        env = ensure_built(settings, force=args.force)
        ensure_model(settings, env)
    except BootstrapError as exc:
        log.error("%s", exc)
        return 1
    print(
        json.dumps({"ready": True, "build_dir": str(env.build_dir), "site_packages": str(env.site_packages)})
    )
    return 0
