"""Model weights (`utils.volume.model`): a hub model fetched into HF_HOME once, a .nemo fetching nothing,
and RunPod's model cache looked in first, for the ASR model and the diarizer alike."""

import os
from collections import OrderedDict
from pathlib import Path

import pytest

import config
import handler
from tests.support.media import b64, encode, speech
from tests.support.volume_env import (
    make_settings,
    refuse_processes,
    write_requirements,
)
from utils import volume as volume_env
from utils.asr import model as asr_model
from utils.speakers import diarizer
from utils.volume import model as volume_model
from utils.volume import settings as layout


def test_a_hub_model_is_fetched_into_hf_home_once(
    volume: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch, isolated_process: None
) -> None:
    settings = make_settings(
        volume,
        write_requirements(volume, wheelhouse, "huggingface_hub==0.0.1"),
        model="nvidia/parakeet-tdt-0.6b-v3",
    )

    volume_env.ensure_environment(settings=settings)

    cached = settings.hf_home / "hub" / "models--nvidia--parakeet-tdt-0.6b-v3" / "snapshots" / "test"
    assert (cached / "parakeet-tdt-0.6b-v3.nemo").read_bytes() == b"weights of nvidia/parakeet-tdt-0.6b-v3"
    assert os.environ["HF_HOME"] == str(settings.hf_home)
    refuse_processes(monkeypatch)
    volume_env.ensure_model(settings, volume_env.find_ready(settings))


def test_a_nemo_file_model_fetches_nothing(volume: Path, wheelhouse: Path, isolated_process: None) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))

    volume_env.ensure_environment(settings=settings)

    assert not settings.hf_home.exists()
    assert not (settings.root / layout.MODELS_DIR).exists()


HUB_NAME = "nvidia/parakeet-tdt-0.6b-v3"


BUNDLED = Path(os.environ["PARAKEET_MODEL"])


REVISION = "6d590f77001d318fb17a0b5bf7ee329a91b52598"


def runpod_cache(
    root: Path, name: str = HUB_NAME, file_name: str | None = None, source: Path = BUNDLED
) -> Path:
    """Lays a bundled model out as RunPod caches a hub model: blob, snapshot link, refs/main."""
    repo = root / "hub" / f"models--{name.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    blob = repo / "blobs" / "0123abcd"
    blob.write_bytes(source.read_bytes())
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (snapshot / (file_name or f"{name.rsplit('/', 1)[1]}.nemo")).symlink_to(blob)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return root


@pytest.fixture
def fresh_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process-wide model slot, emptied for the test and given back after it."""
    monkeypatch.setattr(asr_model, "_models", OrderedDict())


def test_a_hub_model_in_runpods_cache_loads_from_there_with_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_model: None, job_root: Path
) -> None:
    monkeypatch.setattr(config, "RUNPOD_MODEL_CACHE_DIR", runpod_cache(tmp_path / "cache"))
    monkeypatch.setattr(config, "PARAKEET_MODEL", HUB_NAME)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    clip = encode(speech("four one seven"), tmp_path / "clip.opus", "-c:a", "libopus")
    result = handler.handler({"id": "cached", "input": {"audio_base64": b64(clip)}})
    assert result["success"] is True, result
    assert result["text"] == "four one seven"
    assert result["meta"]["model"] == HUB_NAME
    assert result["meta"]["model_source"] == "runpod_cache"
    assert not (tmp_path / "empty-hf-home").exists()


def test_the_diarizer_loads_from_runpods_cache_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    name = "nvidia/diar_streaming_sortformer_4spk-v2.1"
    cache = runpod_cache(tmp_path / "cache", name, source=Path(os.environ["DIARIZER_MODEL"]))
    monkeypatch.setattr(config, "RUNPOD_MODEL_CACHE_DIR", cache)
    monkeypatch.setattr(config, "DIARIZER_MODEL", name)
    monkeypatch.setattr(diarizer, "_loaded", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clip = encode(speech("four one seven"), tmp_path / "clip.flac")
    result = handler.handler({"id": "cached", "input": {"audio_base64": b64(clip), "diarize": True}})
    assert result["success"] is True, result
    assert result["meta"]["diarizer"] == name
    assert result["meta"]["diarizer_source"] == "runpod_cache"
    assert [s["speaker"] for s in result["speakers"]] == ["S1"]


def test_cache_lookup_follows_refs_main_and_refuses_what_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "RUNPOD_MODEL_CACHE_DIR", runpod_cache(tmp_path / "a"))
    found = volume_model.runpod_cached_file(HUB_NAME)
    assert found is not None
    assert found.parent.name == REVISION
    assert volume_model.runpod_cached_file("nvidia/other-model") is None
    # A snapshot whose one .nemo has another name is still the model.
    monkeypatch.setattr(
        config, "RUNPOD_MODEL_CACHE_DIR", runpod_cache(tmp_path / "b", file_name="model.nemo")
    )
    assert volume_model.runpod_cached_file(HUB_NAME).name == "model.nemo"
    # refs/main naming a snapshot that is not there (a half-written cache) is no hit.
    (tmp_path / "b" / "hub" / "models--nvidia--parakeet-tdt-0.6b-v3" / "refs" / "main").write_text("f00d")
    assert volume_model.runpod_cached_file(HUB_NAME) is None
    # No cache directory at all (an endpoint without model caching).
    monkeypatch.setattr(config, "RUNPOD_MODEL_CACHE_DIR", tmp_path / "missing")
    assert volume_model.runpod_cached_file(HUB_NAME) is None
    assert asr_model.model_source(HUB_NAME) == ("hub", None)
    assert asr_model.model_source(str(BUNDLED)) == ("file", None)


def test_a_cached_model_is_not_downloaded_to_the_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "RUNPOD_MODEL_CACHE_DIR", runpod_cache(tmp_path / "cache"))
    settings = volume_model.Settings.from_config()
    settings = type(settings)(**{**vars(settings), "model": HUB_NAME, "root": tmp_path / "volume"})
    # The environment is never used: nothing runs when the cache holds the model.
    volume_model.ensure_model(settings, env=None)  # type: ignore[arg-type]
    assert not (tmp_path / "volume").exists()
