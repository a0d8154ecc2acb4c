"""One job from validated input to the result a client gets, with the time each stage took.

validation → sources + audio (`utils.job.preparation`) → the model (`utils.asr`) → results (`utils.output`).
Both front doors (the queue handler and the HTTP server) run jobs through `answer`, the one place that
turns a failure of the whole job into the error contract.
"""

import dataclasses
import importlib.util
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import config
from utils import sources, volume
from utils.asr import decoding, vad
from utils.asr import model as asr_model
from utils.asr.records import LOGPROBS, Transcript
from utils.asr.scheduler import Progress, WordSink, scheduler
from utils.contract import validation
from utils.errors import (
    DiarizationError,
    GpuFailureError,
    GpuOutOfMemoryError,
    InternalError,
    UnreliableTranscriptError,
    WorkerError,
)
from utils.job import dirs, inflight, preparation
from utils.job.deadline import Deadline
from utils.output import delivery, results
from utils.speakers import channels, diarizer, pipeline
from utils.text import language, number_transcripts

log = logging.getLogger(__name__)

# What one item's audio can make the models fail with; in a batch it fails that item alone. Anything else
# (a GPU failure, the job's deadline or cancellation) ends the whole job.
ITEM_FAILURES = (UnreliableTranscriptError, GpuOutOfMemoryError, DiarizationError)


@dataclass(frozen=True)
class JobOptions:
    """How a front door wants a job run; the defaults are the queue's."""

    # A file the HTTP server received: the job's one audio.
    upload: Path | None = None
    # False: a full worker refuses the job (`busy`) instead of waiting for room.
    wait_for_room: bool = True
    # A stream: audio longer than this is transcribed window by window, and each window's settled
    # words go to `on_words` (single-channel items only).
    stream_window_seconds: float | None = None
    on_words: WordSink | None = None
    # OpenAI's verbose_json: segments carry their tokens, `avg_logprob` and `no_speech_prob` (costs a
    # little decoding and a speech-detector pass over the segments; see utils.http.formats).
    segment_details: bool = False


def _rows(samples: np.ndarray) -> list[np.ndarray]:
    """An item's mono arrays: one per channel kept apart, or the mix."""
    return list(samples) if samples.ndim == 2 else [samples]


@dataclass
class ModelStage:
    """What the model stage of a job gives: transcripts, the batch items the models failed on (one of
    `ITEM_FAILURES` each), the model description for `meta`, and the seconds it took."""

    transcripts: dict[int, Transcript] = field(default_factory=dict)
    failures: dict[int, WorkerError] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    # Making the models ready: the environment and model loads of a worker's first job, about 0 after.
    load_seconds: float = 0.0
    # The stage's wall clock after loading, less the diarizer's runs (which take turns on the device).
    transcribe_seconds: float = 0.0
    diarize_seconds: float = 0.0


def transcribe_ready(
    ready: dict[int, np.ndarray],
    request: validation.JobRequest,
    deadline: Deadline,
    progress: Progress,
    options: JobOptions = JobOptions(),
) -> ModelStage:
    """Transcribes (and diarizes, when asked) the items that have samples, building the volume
    environment first if needed.

    Every channel kept apart is an item of its own for the scheduler; diarizer runs queue beside them.

    Args:
        ready: Samples by item index: mono, or one row per channel for `channels: "separate"`.
        request: The validated job (timestamp kinds, hotwords, speakers, channels).
        deadline: The job's deadline (and cancellation), checked before each model call.
        progress: Receives short progress messages.
        options: A stream's window length and word sink (for an item of one row), and segment details.

    Returns:
        Transcripts by item index, the model description and the seconds each part took.
    """
    if not ready:
        return ModelStage()
    loading = time.perf_counter()
    volume.ensure_environment(progress)
    model = asr_model.model_info(request.model)  # loads the model on its first job
    boost = decoding.Boost(request.hotwords, request.hotword_weight) if request.hotwords else None
    if boost is not None:
        decoding.check_spelling(asr_model.get_model(request.model), boost)
    if request.diarize:
        model = {**model, **diarizer.info()}  # loads the diarizer on its first job
    kinds = results.timestamp_kinds_needed(request)
    if options.segment_details:
        kinds |= {"word", "segment", LOGPROBS}
    started = time.perf_counter()
    rows = {index: _rows(samples) for index, samples in ready.items()}

    # With vad, each row's speech regions, joined: the model hears only them (None: the whole row).
    speech = {index: [vad.speech_map(row) if request.vad else None for row in rows[index]] for index in rows}

    def submit(row: np.ndarray, alone: bool, found: vad.SpeechMap | None) -> "Future[Transcript]":
        if found is not None:
            if not found.regions:
                done: Future[Transcript] = Future()
                done.set_result(vad.silent(kinds))
                return done
            row = found.joined
        if not alone:  # channels kept apart are not streamed: their words come merged at the end
            return scheduler.submit(row, kinds, deadline, progress, boost, model_name=request.model)
        return scheduler.submit(
            row,
            kinds,
            deadline,
            progress,
            boost,
            options.stream_window_seconds,
            options.on_words,
            model_name=request.model,
        )

    def restored(index: int, channel: int, transcript: Transcript) -> Transcript:
        found = speech[index][channel]
        return found.restore(transcript) if found is not None and found.regions else transcript

    asr = {
        index: [
            submit(row, len(rows[index]) == 1, found)
            for row, found in zip(rows[index], speech[index], strict=True)
        ]
        for index in rows
    }
    speakers = {
        index: pipeline.submit_diarization(rows[index], deadline) for index in rows if request.diarize
    }
    futures: list[Future[Any]] = [future for item in (*asr.values(), *speakers.values()) for future in item]
    stage = ModelStage(model=model, load_seconds=started - loading)
    transcripts = stage.transcripts
    separate = request.channels == "separate"
    try:
        for index, channel_futures in asr.items():
            try:
                parts = [
                    restored(index, channel, future.result())
                    for channel, future in enumerate(channel_futures)
                ]
                if request.diarize:
                    activities = [future.result() for future in speakers[index]]
                    stage.diarize_seconds += sum(activity.seconds for activity in activities)
                    parts = [
                        pipeline.with_speakers(
                            part, activity, request.max_speakers, channel if separate else None
                        )
                        for channel, (part, activity) in enumerate(zip(parts, activities, strict=True))
                    ]
                if options.segment_details:
                    parts = [
                        vad.with_no_speech(part, row) for part, row in zip(parts, rows[index], strict=True)
                    ]
            except ITEM_FAILURES as error:
                if not request.is_batch:
                    raise
                log.info("batch item %d failed: %s (%s)", index, error, error.error_type)
                stage.failures[index] = error
            else:
                merged = channels.merge_channels(parts) if separate else parts[0]
                if request.vad:
                    heard = sum(found.speech_seconds for found in speech[index])
                    merged = dataclasses.replace(merged, speech_seconds=round(heard, 3))
                transcripts[index] = merged
            progress(f"{len(transcripts) + len(stage.failures)}/{len(ready)} items transcribed")
    finally:
        for future in futures:
            future.cancel()  # the items still queued leave the queue with the job
    stage.transcribe_seconds = max(0.0, time.perf_counter() - started - stage.diarize_seconds)
    return stage


def load_models() -> None:
    """Makes the volume environment ready and loads the model (and the diarizer, with `PRELOAD_DIARIZER`).

    Raises:
        WorkerError: The environment or a model could not be made ready; the next call tries again.
    """
    volume.ensure_environment()
    asr_model.loaded()
    language.detect("ready")  # builds the language detector (0.2 s) before the first item needs it
    if config.PRELOAD_DIARIZER:
        diarizer.loaded()


def preload() -> bool:
    """Loads the model (and the diarizer, with `PRELOAD_DIARIZER`) at worker start when torch and NeMo
    are already at hand.

    With NeMo importable or the volume environment published, the first job then pays no import and
    no load. When the environment must still be built, the first job builds it (with progress).

    Returns:
        Whether the model was loaded.
    """
    if importlib.util.find_spec("nemo") is None and volume.find_ready(volume.Settings.from_config()) is None:
        log.info("the volume environment is not built yet; the first job builds it")
        return False
    try:
        load_models()
    except WorkerError as error:
        # The first job tries again and reports the failure to its client.
        log.error("preloading the models failed: %s", error)
        return False
    return True


def answer(
    job: dict[str, Any],
    progress: Progress,
    deadline: Deadline,
    options: JobOptions = JobOptions(),
) -> dict[str, Any]:
    """Runs one job to the output contract, never raising: the one place failures become the contract.

    Args:
        job: The job, with the client's payload under "input" (and an "id" for the log).
        progress: Receives short progress messages for the client.
        deadline: The job's deadline and cancellation.
        options: What the front door asks for beyond the input (an upload, no waiting, a stream).

    Returns:
        The success or failure contract; `refresh_worker: true` after an unrecoverable GPU error.
    """
    try:
        return _run_job(job, progress, deadline, options)
    except GpuFailureError as error:
        log.error("job %s: GPU failure, asking for this worker to be replaced", job.get("id"))
        return {**results.error_fields(error), "refresh_worker": True}
    except WorkerError as error:
        log.info("job %s failed: %s (%s)", job.get("id"), error, error.error_type)
        return results.error_fields(error)
    except Exception:
        log.exception("job %s failed with an unexpected error", job.get("id"))
        return results.error_fields(InternalError())


def _run_job(
    job: dict[str, Any], progress: Progress, deadline: Deadline, options: JobOptions
) -> dict[str, Any]:
    """`answer`'s work: the success contract, or an exception for a failure of the whole job."""
    started = time.perf_counter()
    request = validation.parse_input(job.get("input"), options.upload)
    if request.output_url is not None:
        sources.check_output_url(request.output_url)  # a bad target fails now, not after the work is done
    with inflight.Reservation(inflight.budget, deadline, options.wait_for_room) as reservation:
        with dirs.job_directory() as job_dir:
            prepared = preparation.fetch_items(request, Path(job_dir), deadline)
            # Room for the job's audio before any of it is decoded (waits while other jobs hold it).
            preparation.decode_items(request, prepared, deadline, reservation)
        # Stage boundary. Checked even when no item is ready: a batch cut short by the deadline fails whole.
        deadline.check()

        timings = results.Timings.of(prepared)
        ready = {index: item.samples for index, item in enumerate(prepared) if item.samples is not None}
        stage = transcribe_ready(ready, request, deadline, progress, options)
        transcripts = {
            index: language.label(transcript, request.language)
            for index, transcript in stage.transcripts.items()
        }
        if request.numbers == "digits":
            transcripts = {
                index: number_transcripts.with_digits(transcript, request.language or transcript.language)
                for index, transcript in transcripts.items()
            }
        model = stage.model
        timings.load, timings.transcribe = stage.load_seconds, stage.transcribe_seconds
        timings.diarize = stage.diarize_seconds
        del ready
        for index, error in stage.failures.items():
            prepared[index].error = error  # a batch item the models failed on: it alone fails
        for item in prepared:
            item.samples = None  # the reservation ends here; so does the audio
    meta = results.job_meta(model, timings, time.perf_counter() - started)
    log.info(
        "job %s: %.1f s of audio in %.2f s", job.get("id"), timings.audio, meta["processing_seconds"]["total"]
    )
    result = results.build_result(request, prepared, transcripts, meta)
    with deadline.applied():
        return delivery.fit_result(result, request.output_url)
