"""Runs `utils.volume.ensure_built` in a separate process for the bootstrap tests (races, killed builders).

    python tests/support/bootstrap_child.py '<settings as JSON>'

Prints one JSON line: {"build_dir": ..., "site_packages": ...}, or exits 1 after a BootstrapError.
"""

import json
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils import volume
from utils.errors import BootstrapError

PATH_FIELDS = {"root", "requirements", "container_requirements", "hf_home"}


def settings_to_json(settings: volume.Settings) -> str:
    """Serializes settings for the command line of this script."""
    data = asdict(settings)
    for name in PATH_FIELDS:
        data[name] = str(data[name])
    data["container_paths"] = [str(path) for path in settings.container_paths]
    return json.dumps(data)


def settings_from_json(text: str) -> volume.Settings:
    """Rebuilds the settings `settings_to_json` wrote."""
    data: dict[str, Any] = json.loads(text)
    known = {item.name for item in fields(volume.Settings)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown settings fields: {sorted(unknown)}")
    for name in PATH_FIELDS:
        data[name] = Path(data[name])
    data["container_paths"] = tuple(Path(path) for path in data["container_paths"])
    data["extra_packages"] = tuple(data["extra_packages"])
    if data["installer"] is not None:
        data["installer"] = volume.Installer(data["installer"]["kind"], tuple(data["installer"]["command"]))
    return volume.Settings(**data)


def main() -> int:
    """Builds or reuses the environment the settings in argv[1] describe.

    Returns:
        0 on success, 1 after a BootstrapError.
    """
    settings = settings_from_json(sys.argv[1])
    try:
        env = volume.ensure_built(settings)
    except BootstrapError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps({"build_dir": str(env.build_dir), "site_packages": str(env.site_packages)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
