"""Where the model weights come from: RunPod's model cache, else HF_HOME on the volume (fetched once
for every worker).

RunPod can cache a Hugging Face model on its hosts for an endpoint (its "model" setting); the files
then lie under `RUNPOD_MODEL_CACHE_DIR` as a hub cache (`hub/models--org--name/snapshots/<rev>/`,
the revision in `refs/main`). A model found there is loaded from that file, with no download.
"""

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import config
from utils.volume.locking import now_iso, once_on_volume, replace_json
from utils.volume.processes import RESULT_PREFIX, run_streamed, step_failed
from utils.volume.settings import MODELS_DIR, Environment, Reporter, Settings, log

# NeMo's from_pretrained looks for `<name>.nemo` in the hub cache first (try_to_load_from_cache), so
# fetching exactly that file makes the first model load a cache hit.
# Run as `python -c FETCH_MODEL_SCRIPT <result prefix> <org/name>`.
FETCH_MODEL_SCRIPT = """
import json, sys
from huggingface_hub import hf_hub_download

prefix, repo = sys.argv[1:3]
path = hf_hub_download(repo_id=repo, filename=repo.rsplit("/", 1)[1] + ".nemo", library_name="nemo")
print(prefix + json.dumps({"path": path}))
"""


def is_hub_name(model: str) -> bool:
    """Tells whether PARAKEET_MODEL names a Hugging Face repository (org/name) rather than a file."""
    return model.count("/") == 1 and not model.endswith(".nemo") and not os.path.exists(model)


def runpod_cached_file(model: str) -> Path | None:
    """The `.nemo` file of a hub model in RunPod's model cache, if the cache holds it.

    Args:
        model: A hub name, `org/name`.

    Returns:
        The file in the snapshot `refs/main` names (`<name>.nemo`, else the snapshot's only `.nemo`),
        or None.
    """
    repo = config.RUNPOD_MODEL_CACHE_DIR / "hub" / f"models--{model.replace('/', '--')}"
    try:
        revision = (repo / "refs" / "main").read_text().strip()
        snapshot = repo / "snapshots" / revision
        if not revision or "/" in revision or not snapshot.is_dir():
            return None
        exact = snapshot / f"{model.rsplit('/', 1)[1]}.nemo"
        if exact.is_file():
            return exact
        found = [path for path in snapshot.glob("*.nemo") if path.is_file()]
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


def model_marker(root: Path, model: str) -> Path:
    """Returns the file that records where a fetched model lies."""
    return root / MODELS_DIR / (model.replace("/", "--") + ".json")


def model_ready(marker: Path) -> bool:
    """Tells whether a model's marker names a file that exists."""
    try:
        return Path(json.loads(marker.read_bytes())["path"]).is_file()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_model(settings: Settings, env: Environment, progress: Callable[[str], None] | None = None) -> None:
    """Fetches the weights of every model the worker will load (`settings.model`, then
    `settings.prefetch`) into HF_HOME on the volume, those that are hub names.

    Nothing is fetched for a model RunPod's model cache holds.

    Runs the environment's interpreter with huggingface_hub, so this process needs neither.

    Args:
        settings: The settings (model names, HF_HOME, root).
        env: The environment to run the downloads with.
        progress: Receives progress messages.

    Raises:
        BootstrapError: A download failed.
    """
    for name in dict.fromkeys((settings.model, *settings.prefetch)):
        _ensure_one(dataclasses.replace(settings, model=name), env, progress)


def _ensure_one(settings: Settings, env: Environment, progress: Callable[[str], None] | None) -> None:
    """Fetches `settings.model` when it is a hub name not already on the volume or in RunPod's cache."""
    if not is_hub_name(settings.model) or runpod_cached_file(settings.model) is not None:
        return
    marker = model_marker(settings.root, settings.model)
    if model_ready(marker):
        return
    report = Reporter(progress)

    def fetched() -> Path | None:
        return marker if model_ready(marker) else None

    def fetch() -> Path:
        activity = f"Downloading {settings.model} to the volume"
        report(activity)
        run = run_streamed(
            [str(env.python), "-c", FETCH_MODEL_SCRIPT, RESULT_PREFIX, settings.model],
            tag="model",
            timeout=settings.model_timeout,
            report=report,
            activity=activity,
            env={**os.environ, "HF_HOME": str(settings.hf_home)},
            cwd=env.build_dir,
        )
        if run.returncode != 0 or run.result is None:
            raise step_failed(run, "model", f"Downloading the model {settings.model} failed")
        record = {"model": settings.model, "path": run.result["path"], "fetched_at": now_iso()}
        replace_json(marker, record)
        log.info("model %s is in %s", settings.model, run.result["path"])
        return marker

    once_on_volume(
        settings,
        marker.with_suffix(".lock"),
        report,
        f"downloading {settings.model}",
        fetched,
        fetch,
        "The model could not be stored on the network volume",
    )
