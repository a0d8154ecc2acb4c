"""Tiny stand-in wheels for the bootstrap tests: real wheels of packages named like the real ones.

`torch`, `nemo_toolkit` (package `nemo` with `nemo.collections.asr`), `huggingface_hub` and `numpy`
install into a real virtual environment, and the verification's real `import torch,
nemo.collections.asr` runs against them in milliseconds instead of seconds.
"""

import base64
import hashlib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

FAKE_TORCH_FILES = {
    "torch/__init__.py": "__version__ = '2.13.0'\nfrom torch import cuda, version\n",
    # A CPU-only torch: no CUDA device, no CUDA runtime.
    "torch/cuda.py": "def is_available():\n    return False\n",
    "torch/version.py": "cuda = None\n",
}
FAKE_NEMO_FILES = {
    "nemo/__init__.py": "__version__ = '3.0.0'\n",
    "nemo/collections/__init__.py": "",
    "nemo/collections/asr/__init__.py": "",
}
# The hub client writes the file where the real one caches it: $HF_HOME/hub/models--org--name/...
FAKE_HUB_FILES = {
    "huggingface_hub/__init__.py": (
        "import os\n"
        "from pathlib import Path\n\n"
        "def hf_hub_download(repo_id, filename, library_name=None):\n"
        "    folder = 'models--' + repo_id.replace('/', '--')\n"
        "    path = Path(os.environ['HF_HOME']) / 'hub' / folder / 'snapshots' / 'test' / filename\n"
        "    path.parent.mkdir(parents=True, exist_ok=True)\n"
        "    path.write_bytes(b'weights of ' + repo_id.encode())\n"
        "    return str(path)\n"
    ),
}


def _record_hash(data: bytes) -> str:
    """Returns a RECORD hash entry (urlsafe base64 sha256 without padding)."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(
    wheelhouse: Path,
    dist: str,
    version: str,
    files: Mapping[str, str],
    requires: Sequence[str] = (),
) -> Path:
    """Writes a pure-Python wheel.

    Args:
        wheelhouse: Directory to write into.
        dist: Distribution name.
        version: Its version.
        files: Archive path to text content of the importable files.
        requires: Requires-Dist specifiers.

    Returns:
        The wheel's path.
    """
    stem = f"{dist.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    contents = {
        **files,
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    path = wheelhouse / f"{stem}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in contents.items():
            data = text.encode()
            archive.writestr(name, data)
            record.append(f"{name},{_record_hash(data)},{len(data)}")
        record.append(f"{info}/RECORD,,")
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def build_wheelhouse(wheelhouse: Path, *, nemo_requires: Sequence[str] = ()) -> None:
    """Writes the stand-in torch, NeMo, hub client and two numpy versions into `wheelhouse`.

    Args:
        wheelhouse: An existing directory.
        nemo_requires: Requires-Dist of the NeMo stand-in.
    """
    write_wheel(wheelhouse, "torch", "2.13.0", FAKE_TORCH_FILES)
    write_wheel(wheelhouse, "nemo_toolkit", "3.0.0", FAKE_NEMO_FILES, nemo_requires)
    write_wheel(wheelhouse, "huggingface_hub", "0.0.1", FAKE_HUB_FILES)
    for version in ("1.26.4", "2.0.0"):
        write_wheel(wheelhouse, "numpy", version, {"numpy/__init__.py": f"__version__ = '{version}'\n"})


def unpack_wheel(wheel: Path, site_packages: Path) -> None:
    """Installs a pure-Python wheel by unpacking it (what an installer does for one)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site_packages)
