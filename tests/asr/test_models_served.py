"""Several models in one worker (`PARAKEET_MODELS`): a job's `model` picks one, at most
`MAX_LOADED_MODELS` are held, and items of different models never share a call. The second model is the
bundled multilingual one, which knows English digits too."""

from pathlib import Path

import numpy as np
import pytest

import config
import handler
from tests.support.media import b64, encode, speech
from utils import volume
from utils.asr import model as asr_model
from utils.asr.scheduler import scheduler
from utils.contract import validation
from utils.errors import InvalidInputError
from utils.job.deadline import Deadline

SECOND = config.BUNDLED_MULTILINGUAL_TEST_MODEL.stem


def test_one_model_is_served_by_default() -> None:
    assert asr_model.served_models() == (config.PARAKEET_MODEL,)


def test_a_job_names_a_model_by_its_id_or_as_configured(two_models: tuple[str, str]) -> None:
    first, second = two_models
    assert validation.parse_input({"audio_base64": "UklGRg=="}).model is None
    assert validation.parse_input({"audio_base64": "UklGRg==", "model": SECOND}).model == second
    assert validation.parse_input({"audio_base64": "UklGRg==", "model": first}).model == first
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input({"audio_base64": "UklGRg==", "model": "whisper-1"})
    served = "parakeet-tdt-digits, parakeet-tdt-digits-multilingual"
    assert str(raised.value) == f"model 'whisper-1' is not served here; served: {served}"


def test_a_models_languages_are_known_by_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert asr_model.languages() == config.MODEL_LANGUAGES
    assert asr_model.languages("nvidia/parakeet-tdt-0.6b-v2") == ("en",)
    assert asr_model.languages("/models/fine-tuned.nemo") == config.MODEL_LANGUAGES
    monkeypatch.setattr(config, "PARAKEET_MODELS", ("nvidia/parakeet-tdt-1.1b",))
    assert asr_model.languages() == ("en",)


def test_meta_says_which_model_ran(two_models: tuple[str, str], tmp_path: Path, job_root: Path) -> None:
    clip = b64(encode(speech("six one four"), tmp_path / "clip.flac"))
    default = handler.handler({"id": "a", "input": {"audio_base64": clip}})
    picked = handler.handler({"id": "b", "input": {"audio_base64": clip, "model": SECOND}})
    assert default["text"] == picked["text"] == "six one four"
    assert default["meta"]["model"] == Path(two_models[0]).stem  # a .nemo by its id
    assert picked["meta"]["model"] == Path(two_models[1]).stem


def test_items_of_different_models_never_share_a_call(
    two_models: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "BATCH_WAIT_MS", 300.0)
    clip = speech("two nine")
    kinds = frozenset({"word"})
    futures = [
        scheduler.submit(clip, kinds, Deadline(60), lambda message: None, model_name=name)
        for name in (*two_models, *two_models)
    ]
    assert [future.result().batch for future in futures] == [2, 2, 2, 2]


def test_past_the_limit_the_least_recently_used_model_is_unloaded(
    two_models: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_LOADED_MODELS", 1)
    first = asr_model.loaded(two_models[0]).model
    asr_model.loaded(two_models[1])
    again = asr_model.loaded(two_models[0]).model
    assert again is not first  # it was unloaded, and loaded anew
    monkeypatch.setattr(config, "MAX_LOADED_MODELS", 2)
    assert asr_model.loaded(two_models[0]).model is again


def test_the_bootstrap_fetches_every_served_model_and_a_preloaded_diarizer(
    two_models: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = volume.Settings.from_config()
    assert (settings.model, settings.prefetch) == (two_models[0], (two_models[1],))
    monkeypatch.setattr(config, "PRELOAD_DIARIZER", True)
    assert volume.Settings.from_config().prefetch == (two_models[1], config.DIARIZER_MODEL)


def test_silence_costs_the_second_model_nothing(
    two_models: tuple[str, str], tmp_path: Path, job_root: Path
) -> None:
    clip = b64(encode(np.zeros(16000, dtype=np.float32), tmp_path / "quiet.flac"))
    result = handler.handler({"id": "q", "input": {"audio_base64": clip, "model": SECOND, "vad": True}})
    assert (result["text"], result["meta"]["model"]) == ("", Path(two_models[1]).stem)
