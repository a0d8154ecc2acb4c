"""The live engine (`utils.realtime.engine`) with the bundled model: turns pushed in small pieces give
the file door's words, turns share steps, finish and close act at once, a live step goes before queued
file work and open sessions keep file calls short, hotwords are per turn, a failed step fails only its
own turns, and a turn outlives its model's unloading."""

import asyncio
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import config
from tests.support.live_turns import MODEL, WORDS, collect, file_transcript, push_all, settings
from tests.support.media import speech
from utils.asr.plans import WINDOWED
from utils.asr.records import Transcript
from utils.asr.scheduler import scheduler
from utils.errors import GpuOutOfMemoryError, InternalError, InvalidInputError
from utils.job.deadline import Deadline
from utils.realtime import streaming
from utils.realtime.engine import LiveSettings, LiveTurn, LiveUpdate, engine

# Word times may differ from the file door's by one encoder frame: each chunk's features are normalized
# over its own buffer, and without CUDA graphs NeMo's batched TDT decoding can record a token's
# duration from a later frame when other turns share the step.
FRAME = 0.08


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    return speech(WORDS)


async def transcribe_live(samples: np.ndarray, delay: str = "medium", start: float = 0.0) -> list[LiveUpdate]:
    turn = engine.open_turn(settings(delay), start)
    await push_all(turn, samples)
    await turn.finish()
    return await collect(turn)


@pytest.fixture
def blocked_scheduler() -> Iterator[threading.Event]:
    """The scheduler's thread held by a device task until the test sets the event."""
    release = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        release.wait(60)

    held = scheduler.run_task(hold, Deadline(120))
    assert started.wait(30)
    yield release
    release.set()
    held.result(timeout=60)


@pytest.mark.parametrize("delay", list(config.LIVE_DELAYS))
def test_a_turn_pushed_in_small_pieces_gives_the_file_doors_words_on_the_session_timeline(
    utterance: np.ndarray, delay: str
) -> None:
    expected = file_transcript(utterance)
    updates = asyncio.run(transcribe_live(utterance, delay, start=12.5))
    final = updates[-1]
    assert final.final
    assert [u.final for u in updates].count(True) == 1
    assert final.text == expected.text == WORDS
    assert "".join(u.delta for u in updates) == final.text
    words = [w for u in updates for w in u.words]
    assert [w.word for w in words] == [w.word for w in expected.timestamps.word]
    for live, filed in zip(words, expected.timestamps.word, strict=True):
        assert live.start == pytest.approx(filed.start + 12.5, abs=FRAME + 1e-6)
        assert live.end == pytest.approx(filed.end + 12.5, abs=FRAME + 1e-6)


def test_turns_streaming_together_share_steps(utterance: np.ndarray) -> None:
    async def run() -> list[list[LiveUpdate]]:
        turns = [engine.open_turn(settings(), 0.0) for _ in range(8)]
        readers = [asyncio.create_task(collect(turn)) for turn in turns]
        for start in range(0, utterance.size, 1600):
            for turn in turns:
                await turn.push(utterance[start : start + 1600])
            await asyncio.sleep(0.02)
        for turn in turns:
            await turn.finish()
        return list(await asyncio.gather(*readers))

    before = engine.stats()
    results = asyncio.run(run())
    after = engine.stats()
    steps, frames, chunks = (
        after.steps - before.steps,
        after.frames - before.frames,
        after.chunks - before.chunks,
    )
    print(f"8 turns: {steps} steps for {frames} frames covering {chunks} chunks")
    assert all(updates[-1].text == WORDS for updates in results)
    assert frames >= 8
    assert chunks >= frames
    assert steps * 2 <= chunks


def test_finish_returns_at_once_and_decodes_without_waiting_for_look_ahead(
    utterance: np.ndarray, blocked_scheduler: threading.Event
) -> None:
    chunk, lookahead = config.LIVE_DELAYS["xhigh"]
    assert utterance.size / config.SAMPLE_RATE < chunk + lookahead  # never a full chunk and look-ahead

    async def run() -> list[LiveUpdate]:
        turn = engine.open_turn(settings("xhigh"), 0.0)
        await push_all(turn, utterance)
        # The scheduler is busy: finish() does not wait for it.
        await asyncio.wait_for(turn.finish(), 5)
        blocked_scheduler.set()
        return await collect(turn)

    updates = asyncio.run(run())
    assert [u.final for u in updates] == [True]
    assert updates[0].text == updates[0].delta == WORDS


def test_finish_while_the_turns_step_runs_leaves_the_rest_for_a_last_step(
    utterance: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = streaming.LiveModel.step
    entered, release = threading.Event(), threading.Event()

    def held_step(self: streaming.LiveModel, frames: list[streaming.Frame]) -> list[streaming.Tokens]:
        # The real step, held until the test has called finish() (a spy, as tests/support/model_spy.py).
        entered.set()
        release.wait(60)
        return real_step(self, frames)

    monkeypatch.setattr(streaming.LiveModel, "step", held_step)

    async def run() -> list[LiveUpdate]:
        turn = engine.open_turn(settings("minimal"), 0.0)
        await push_all(turn, utterance)
        assert await asyncio.to_thread(entered.wait, 60)
        await turn.finish()  # the running step took a chunk frame before this
        monkeypatch.setattr(streaming.LiveModel, "step", real_step)
        release.set()
        return await collect(turn)

    before = engine.stats()
    updates = asyncio.run(run())
    assert engine.stats().steps - before.steps == 2
    assert updates[-1].final
    assert updates[-1].text == "".join(u.delta for u in updates) == WORDS


def test_close_mid_turn_frees_it_and_leaves_it_out_of_the_next_step(
    utterance: np.ndarray, blocked_scheduler: threading.Event
) -> None:
    async def run() -> tuple[list[LiveUpdate], list[LiveUpdate]]:
        open_before = engine.open_turns()
        closing = engine.open_turn(settings(), 0.0)
        staying = engine.open_turn(settings(), 0.0)
        await push_all(closing, utterance)
        await push_all(staying, utterance)
        # Both have work waiting behind the busy scheduler; one is closed before its step runs.
        closing.close()
        closing.close()  # idempotent
        assert engine.open_turns() == open_before + 1
        await closing.push(utterance)  # audio still on its way after a disconnect is dropped
        before = engine.stats()
        blocked_scheduler.set()
        await staying.finish()
        ended, kept = await collect(closing), await collect(staying)
        after = engine.stats()
        assert after.frames - before.frames == after.chunks - before.chunks == 1  # the staying turn's alone
        assert engine.open_turns() == open_before
        return ended, kept

    ended, kept = asyncio.run(run())
    assert ended == []  # updates() just ends: no final for a closed turn
    assert kept[-1].text == WORDS


def test_a_live_step_goes_before_a_queued_file_batch(
    utterance: np.ndarray, blocked_scheduler: threading.Event
) -> None:
    order: list[str] = []

    async def run() -> list[LiveUpdate]:
        # A file item waits first, then a live turn's step: the live step still runs first.
        filed = scheduler.submit(utterance, frozenset(), Deadline(120), lambda _: None)
        filed.add_done_callback(lambda _: order.append("file"))
        turn = engine.open_turn(settings(), 0.0)
        await push_all(turn, utterance)
        await turn.finish()
        blocked_scheduler.set()
        updates = await collect(turn)
        order.append("live")
        filed.result(timeout=60)
        return updates

    updates = asyncio.run(run())
    assert updates[-1].text == WORDS
    assert order == ["live", "file"]


def test_hotwords_are_per_turn_and_a_phrase_the_model_cannot_spell_fails_only_its_turn() -> None:
    voice = speech("four one seven two nine")
    noisy = (voice + 0.2 * np.random.default_rng(0).standard_normal(voice.size)).astype(np.float32)

    async def one(hotwords: tuple[str, ...]) -> str:
        turn = engine.open_turn(settings("medium", hotwords), 0.0)
        await push_all(turn, noisy)
        await turn.finish()
        return (await collect(turn))[-1].text

    async def run() -> list[str | BaseException]:
        # In the same steps: a plain turn, a boosted one, and one whose phrase cannot be written.
        return await asyncio.gather(
            one(()), one(("four one seven",)), one(("Zürich",)), return_exceptions=True
        )

    plain, boosted, unspellable = asyncio.run(run())
    print(f"noisy: {plain!r}; boosted toward 'four one seven': {boosted!r}")
    assert isinstance(plain, str)
    assert "four one seven" not in plain
    assert isinstance(boosted, str)
    assert "four one seven" in boosted
    assert isinstance(unspellable, InvalidInputError)
    assert str(unspellable) == "hotwords[0] 'Zürich' has characters this model cannot write"
    # The boosting tree leaves with its turn.
    assert streaming.live_model(str(config.BUNDLED_TEST_MODEL)).boosts == {}


async def failed_then_next(
    utterance: np.ndarray, expected: type[BaseException], mend: Callable[[], None] = lambda: None
) -> tuple[BaseException | None, list[LiveUpdate]]:
    """A turn whose step fails (the error its updates raise), then, after `mend`, the next turn's updates."""
    failing = engine.open_turn(settings(), 0.0)
    await push_all(failing, utterance)
    await failing.finish()
    error = None
    try:
        await collect(failing)
    except expected as caught:
        error = caught
    mend()
    later = engine.open_turn(settings(), 0.0)
    await push_all(later, utterance)
    await later.finish()
    return error, await collect(later)


def test_a_failed_step_fails_only_its_turns(utterance: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    real_step = streaming.LiveModel.step
    failures = [True]

    def step(self: streaming.LiveModel, frames: list[streaming.Frame]) -> list[streaming.Tokens]:
        if failures and failures.pop():
            # Injected: CUDA running out of memory cannot happen on this CPU-only machine.
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real_step(self, frames)

    monkeypatch.setattr(streaming.LiveModel, "step", step)

    error, later = asyncio.run(failed_then_next(utterance, GpuOutOfMemoryError))
    assert str(error) == "a live step ran out of GPU memory"
    assert later[-1].text == WORDS


def test_bad_settings_are_refused_when_the_turn_opens() -> None:
    async def run(bad: LiveSettings) -> None:
        engine.open_turn(bad, 0.0)

    with pytest.raises(
        InvalidInputError, match="delay must be one of minimal, low, medium, high, xhigh, got 'fast'"
    ):
        asyncio.run(run(LiveSettings(MODEL, "fast")))
    with pytest.raises(InvalidInputError, match="model 'whisper-1' is not served here"):
        asyncio.run(run(LiveSettings("whisper-1", "medium")))


def test_turns_of_two_models_decode_in_one_step_each(
    two_models: tuple[str, str], utterance: np.ndarray
) -> None:
    async def one(model: str) -> str:
        turn = engine.open_turn(LiveSettings(model, "low"), 0.0)
        await push_all(turn, utterance)
        await turn.finish()
        return (await collect(turn))[-1].text

    async def run() -> list[str]:
        return list(await asyncio.gather(*(one(model) for model in two_models)))

    english, multilingual = asyncio.run(run())
    assert english == WORDS
    assert multilingual  # the multilingual test model hears digits too (its own spelling)


def test_a_turn_outlives_its_model_being_unloaded_and_loaded_again(
    two_models: tuple[str, str], utterance: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_LOADED_MODELS", 1)
    english, multilingual = two_models
    half = utterance.size // 2
    holders: list[streaming.LiveModel] = []
    real_hold = streaming.LiveModel.hold_boost

    def hold_boost(self: streaming.LiveModel, hotwords: tuple[str, ...]) -> None:
        holders.append(self)  # a spy: which live pieces took the hotwords
        real_hold(self, hotwords)

    monkeypatch.setattr(streaming.LiveModel, "hold_boost", hold_boost)

    async def run() -> tuple[list[LiveUpdate], str]:
        turn = engine.open_turn(LiveSettings(english, "minimal", ("nine eight three",)), 0.0)
        await push_all(turn, utterance[:half])
        reader = turn.updates()
        first = await asyncio.wait_for(reader.__anext__(), 60)  # a step held its hotwords
        other = engine.open_turn(LiveSettings(multilingual, "minimal"), 0.0)
        await push_all(other, utterance)
        await other.finish()
        other_text = (await collect(other))[-1].text  # its model took the English one's place
        await push_all(turn, utterance[half:])
        await turn.finish()
        return [first, *[update async for update in reader]], other_text

    updates, other_text = asyncio.run(run())
    assert other_text
    # The reloaded model's new pieces took the turn's hotwords again.
    assert len(holders) == 2
    assert holders[0] is not holders[1]
    assert "".join(u.delta for u in updates) == updates[-1].text == WORDS
    assert streaming.live_model(english).boosts == {}


def test_open_sessions_and_turns_keep_file_calls_short(
    utterance: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "LIVE_FILE_CALL_SECONDS", 8.0)
    monkeypatch.setattr(config, "CPU_MAX_CALL_SECONDS", 60.0)  # the live bound alone (this runs on a CPU)
    audio = np.concatenate([utterance] * 5)  # about 22 s: one call when no live session is open
    engine.session_opened()
    try:
        in_session = file_transcript(audio)
    finally:
        engine.session_closed()

    async def beside_a_turn() -> Transcript:
        turn = engine.open_turn(settings(), 0.0)
        try:
            return await asyncio.to_thread(file_transcript, audio)
        finally:
            turn.close()

    beside_turn = asyncio.run(beside_a_turn())
    alone = file_transcript(audio)
    assert in_session.attention == beside_turn.attention == WINDOWED
    assert in_session.windows > 1
    assert alone.attention != WINDOWED


def test_a_bug_in_a_step_ends_that_models_turns_and_the_engine_goes_on(
    utterance: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_take = LiveTurn._take_frame

    def broken(self: LiveTurn) -> streaming.Frame:
        raise RuntimeError("injected bug")  # a bug in the engine's own code, not the model's

    monkeypatch.setattr(LiveTurn, "_take_frame", broken)

    def mend() -> None:
        monkeypatch.setattr(LiveTurn, "_take_frame", real_take)

    error, later = asyncio.run(failed_then_next(utterance, InternalError, mend))
    assert str(error) == "internal error while transcribing; the worker logged the details"
    assert later[-1].text == WORDS
