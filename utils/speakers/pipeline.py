"""Diarization as part of a job: queued on the scheduler beside the ASR items, then applied to words.

`submit_diarization` queues one diarizer run per channel the job transcribes (one, for the mix) as
scheduler tasks, so they take turns on the device with every job's model calls. `with_speakers`
labels a finished transcript's words from that run's activity and splits its segments where the
speaker changes.
"""

import dataclasses
import logging
import time
from concurrent.futures import Future

import numpy as np

import config
from utils.asr import transcribe
from utils.asr.records import Timestamps, Transcript, segments_of
from utils.asr.scheduler import scheduler
from utils.errors import DiarizationError, GpuOutOfMemoryError, WorkerError
from utils.job.deadline import Deadline
from utils.speakers import assign, diarizer
from utils.speakers.diarizer import SpeakerActivity

log = logging.getLogger(__name__)


def _diarize(loaded: diarizer.LoadedDiarizer, samples: np.ndarray) -> SpeakerActivity:
    """One diarizer run, its failures turned into the worker's errors."""
    started = time.perf_counter()
    try:
        activity = diarizer.speaker_activity(loaded, samples)
        return dataclasses.replace(activity, seconds=time.perf_counter() - started)
    except WorkerError:
        raise
    except Exception as error:
        seconds = samples.size / config.SAMPLE_RATE
        exhausted = transcribe.memory_exhausted(error, "diarizer", seconds)
        if exhausted is not None:
            raise GpuOutOfMemoryError(f"diarizing {seconds:.0f} s of audio ran out of {exhausted}") from error
        log.exception("the diarizer failed on %.1f s of audio", seconds)
        raise DiarizationError(f"the diarizer failed ({type(error).__name__}); see the worker log") from error


def submit_diarization(rows: list[np.ndarray], deadline: Deadline) -> "list[Future[SpeakerActivity]]":
    """Queues a diarizer run for each channel's samples (the diarizer is loaded here, first).

    Args:
        rows: Mono samples, one array per channel transcribed.
        deadline: The job's deadline and cancellation.

    Returns:
        One future per row.

    Raises:
        ModelLoadError: The diarizer could not be loaded.
    """
    loaded = diarizer.loaded()
    return [scheduler.run_task(lambda row=row: _diarize(loaded, row), deadline) for row in rows]


def with_speakers(
    transcript: Transcript, activity: SpeakerActivity, max_speakers: int | None, channel: int | None
) -> Transcript:
    """A transcript whose words carry speakers, whose segments split at speaker changes, with its speakers.

    Args:
        transcript: One item's (or one channel's) transcript, with word timestamps.
        activity: The diarizer's output for the same audio.
        max_speakers: At most this many speakers (None: no limit).
        channel: The channel it came from (None: the mix).

    Returns:
        The labelled transcript.
    """
    words, speakers = assign.label_words(transcript.timestamps.word or [], activity, max_speakers, channel)
    timestamps = Timestamps(
        word=words,
        segment=segments_of(words) if transcript.timestamps.segment is not None else None,
        char=transcript.timestamps.char,
    )
    return dataclasses.replace(transcript, timestamps=timestamps, speakers=speakers)
