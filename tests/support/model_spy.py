"""A spy on the real ASR model's calls, for tests of how items share them."""

import time
from typing import Any

import numpy as np
import pytest

from utils.asr import model as asr_model


class ModelSpy:
    """Wraps the real model's `transcribe` to record each call's audio lengths (and inject faults)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.model = asr_model.get_model()
        self.real = self.model.transcribe
        self.calls: list[list[int]] = []
        self.fail_on_length: int | None = None
        self.delay = 0.0
        monkeypatch.setattr(self.model, "transcribe", self)

    def __call__(self, audios: list[np.ndarray], **kwargs: Any) -> Any:
        lengths = [audio.size for audio in audios]
        self.calls.append(lengths)
        time.sleep(self.delay)
        if self.fail_on_length in lengths:
            # Injected: a library bug on one input; the real model does not fail on good audio.
            raise RuntimeError("injected failure on one item")
        return self.real(audios, **kwargs)
