"""The volume environment: torch and NeMo installed once onto the network volume, shared by workers.

The container stays small; the first job (or `python bootstrap.py` on a one-off pod) builds a virtual
environment on the volume and every later worker reuses it. Stdlib only: this runs before the
environment exists. One module per step:

- `spec`: the environment's identity (a hash of everything that changes its contents);
- `build`: a venv, the pinned install and its verification;
- `publish`: the first verified build to link `ready.json` wins; finding the published one;
- `activation`: putting a published environment on `sys.path` (what the handler calls);
- `model`: the model weights fetched into HF_HOME on the volume;
- `gc`: removing what dead builders left;
- `locking`, `processes`: the lock, heartbeats, volume log, and streamed subprocesses they share;
- `cli`: `python bootstrap.py --check | --force | --gc`.
"""

from utils.volume.activation import activate, ensure_environment
from utils.volume.build import ensure_built, find_installer, gpu_present
from utils.volume.cli import check, main
from utils.volume.gc import collect_garbage
from utils.volume.model import ensure_model
from utils.volume.publish import find_ready
from utils.volume.settings import Environment, Installer, Settings, running_site_packages
from utils.volume.spec import Spec, compute_spec, installed_distributions

__all__ = [
    "Environment",
    "Installer",
    "Settings",
    "Spec",
    "activate",
    "check",
    "collect_garbage",
    "compute_spec",
    "ensure_built",
    "ensure_environment",
    "ensure_model",
    "find_installer",
    "find_ready",
    "gpu_present",
    "installed_distributions",
    "main",
    "running_site_packages",
]
