"""Trains the bundled test diarizer: a tiny Sortformer that really tells synthesized speakers apart.

The model is the family of `nvidia/diar_streaming_sortformer_4spk-v2.1`, shrunk:
`SortformerEncLabelModel` with a FastConformer encoder (`dw_striding` x8, 80 ms frames), a Transformer
encoder, four speaker outputs (sigmoids) and the streaming parameters (speaker cache and FIFO) that the
worker uses for long audio. It learns from conversations synthesized with espeak-ng: 1 to 3 speakers,
each a voice + variant + pitch, taking turns (3 to 16 when several talk) of 1 to 7 digit words with
pauses and some overlap, the exact turn boundaries known. The loss is NeMo's own: BCE against
arrival-time-sorted (ATS) and permutation-invariant (PIL) targets, as
`SortformerEncLabelModel.training_step` computes it.

Speakers of the held-out conversations are voice+variant pairs never used in training. After training
the tool saves the `.nemo`, restores it with `SortformerEncLabelModel.restore_from` and measures the
diarization error rate (DER, collar 0.25 s, best speaker mapping) on the held-out conversations, offline
and in streaming mode, and writes it with the command, seeds and corpus to a JSON card beside the model.

Training starts with a short speaker-identification stage for the encoder (which training voice says
a clip), then trains the whole model on conversations, keeping a side loss on which training voice says
each frame. The learning rate follows a cosine over whichever runs out first, `--steps` or
`--max-minutes`. The committed fixture took three runs of 20 minutes on 2 CPU cores, each continuing
the last (`--init`), the first two on long conversations only, from the repository root:

    .venv/bin/python -m tools.train_test_diarizer --out first.nemo --turns 6 16
    .venv/bin/python -m tools.train_test_diarizer --init first.nemo --out second.nemo --turns 6 16
    .venv/bin/python -m tools.train_test_diarizer --init second.nemo \
        --out tests/fixtures/sortformer-digits.nemo

Its card records the three runs and their held-out DER. One 20-minute run does not reach the 10 %
held-out DER we aimed for (18 % after the first); the card says so.

Every random choice follows `--seed`; weights are not bit-identical across machines (CPU kernels and
thread counts differ). Requires espeak-ng on PATH.
"""

import argparse
import itertools
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from tools.synth import DIGIT_WORDS, SAMPLE_RATE, synthesize, trim_silence
from tools.train_test_model import check_voices_exist, voice_splits
from tools.training import fastconformer_encoder, package_version, warmup_cosine_factor

FRAME_SECONDS = 0.08  # Sortformer's output frame: 10 ms features subsampled 8 times
NUM_SPEAKERS = 4
N_MELS = 80
D_MODEL = 64
CLIPS_PER_SPEAKER = 8
TURN_WORDS = (1, 7)
SPEAKERS_PER_CONVERSATION = ((1, 0.1), (2, 0.45), (3, 0.45))  # (count, share)
# Short exchanges and long ones where speakers come back many times (each return is a lesson in who
# is who): trained on only one kind, the model does poorly on the other.
TURNS_PER_CONVERSATION = (3, 16)
PAUSE_SECONDS = (0.15, 0.9)
OVERLAP_FRACTION = 0.15
OVERLAP_SECONDS = (0.2, 0.6)
PITCH_RANGE = (20, 80)
# The speakers of one conversation differ in pitch by at least this much (espeak-ng's 0-99 scale), as
# people talking together usually do; it also gives the tiny model a voice cue it learns in minutes.
MIN_PITCH_GAP = 15
SPEEDS = (130, 150, 170, 190)
COLLAR_SECONDS = 0.25
PEAK_LR = 1.5e-3
PRETRAIN_LR = 1e-3
PRETRAIN_CLIPS = 16  # per speaker-identification step
MIN_LR = 5e-5
WARMUP_STEPS = 100
SPEAKER_ID_WEIGHT = 0.2  # the side loss that keeps voice identity in the encoder's frames
# Every conversation is new, so there is nothing to regularize against; on a CPU, dropout's random
# masks also cost a quarter of each step.
DROPOUT = 0.0
CONV_CHANNELS = 16  # of the subsampling convolutions, which run at 10 ms and cost most at 32
# Streaming for long audio: 60 s chunks with 1 s of context either side, a speaker cache of 188
# frames and a FIFO of 188 frames (all in 80 ms frames), like the released streaming model's shape.
STREAMING = {
    "chunk_len": 750,
    "chunk_left_context": 12,
    "chunk_right_context": 12,
    "fifo_len": 188,
    "spkcache_len": 188,
    "spkcache_update_period": 750,
}


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an espeak-ng voice with variant, a pitch and a speed."""

    voice: str
    pitch: int
    speed: int


@dataclass
class Conversation:
    """Samples at 16 kHz and who spoke when: `(speaker index, start, end)` in seconds."""

    samples: np.ndarray
    turns: list[tuple[int, float, float]]
    speakers: list[Speaker]

    @property
    def seconds(self) -> float:
        """The conversation's length."""
        return self.samples.size / SAMPLE_RATE


def make_speakers(rng: random.Random, voices: list[str], count: int) -> list[Speaker]:
    """Draws distinct speakers: each voice+variant at most once, with a pitch and speed of its own.

    Args:
        rng: Source of every random choice.
        voices: Voice+variant names to draw from.
        count: How many speakers.

    Returns:
        The speakers.
    """
    return [
        Speaker(voice, rng.randint(*PITCH_RANGE), rng.choice(SPEEDS))
        for voice in rng.sample(voices, min(count, len(voices)))
    ]


def synthesize_clips(rng: random.Random, speakers: list[Speaker]) -> dict[Speaker, list[np.ndarray]]:
    """Synthesizes a pool of turns (1 to 7 digit words, silence trimmed) for each speaker.

    Args:
        rng: Source of the words.
        speakers: Who speaks.

    Returns:
        Clips by speaker.
    """
    pools: dict[Speaker, list[np.ndarray]] = {}
    for speaker in speakers:
        pools[speaker] = []
        for _ in range(CLIPS_PER_SPEAKER):
            words = " ".join(rng.choice(DIGIT_WORDS) for _ in range(rng.randint(*TURN_WORDS)))
            clip = trim_silence(synthesize(words, speaker.voice, speaker.speed, speaker.pitch))
            pools[speaker].append(clip / max(float(np.abs(clip).max()), 1e-6))
    return pools


def draw_cast(rng: random.Random, speakers: list[Speaker], count: int) -> list[Speaker]:
    """Draws `count` speakers whose pitches differ by `MIN_PITCH_GAP` (fewer when no such set turns up).

    Args:
        rng: Source of the draws.
        speakers: Who may take part.
        count: How many are wanted.

    Returns:
        The cast, at least one speaker.
    """
    for _ in range(200):
        cast = rng.sample(speakers, min(count, len(speakers)))
        if all(abs(a.pitch - b.pitch) >= MIN_PITCH_GAP for a, b in itertools.combinations(cast, 2)):
            return cast
    return draw_cast(rng, speakers, count - 1) if count > 1 else rng.sample(speakers, 1)


def make_conversation(
    rng: random.Random, pools: dict[Speaker, list[np.ndarray]], turns: tuple[int, int]
) -> Conversation:
    """Composes one conversation from the clip pools: turns, pauses, some overlap, noise.

    Args:
        rng: Source of every random choice.
        pools: Clips by speaker.
        turns: The range of its number of turns when several speak.

    Returns:
        The conversation with its exact turns; speaker indices follow the order of first appearance.
    """
    counts, shares = zip(*SPEAKERS_PER_CONVERSATION, strict=True)
    count = rng.choices(counts, shares)[0]
    cast = draw_cast(rng, list(pools), count)
    count = len(cast)
    n_turns = rng.randint(*turns) if count > 1 else rng.randint(1, 3)
    order = list(range(count))  # every speaker speaks at least once
    while len(order) < n_turns:
        order.append(rng.choice([s for s in range(count) if s != order[-1]] or [0]))
    placed: list[tuple[int, int, np.ndarray]] = []
    cursor = int(rng.uniform(0.1, 1.0) * SAMPLE_RATE)
    for speaker in order:
        clip = rng.choice(pools[cast[speaker]]) * rng.uniform(0.3, 0.9)
        if placed and rng.random() < OVERLAP_FRACTION:
            start = max(placed[-1][1] - int(rng.uniform(*OVERLAP_SECONDS) * SAMPLE_RATE), placed[-1][0] + 1)
        else:
            start = cursor + int(rng.uniform(*PAUSE_SECONDS) * SAMPLE_RATE)
        placed.append((start, start + clip.size, clip))
        cursor = max(cursor, start + clip.size)
    samples = np.zeros(cursor + int(rng.uniform(0.1, 1.0) * SAMPLE_RATE), np.float32)
    turns = []
    for (start, end, clip), speaker in zip(placed, order, strict=True):
        samples[start:end] += clip
        turns.append((speaker, start / SAMPLE_RATE, end / SAMPLE_RATE))
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(0.0, 0.02), samples.size)
    samples = np.clip(samples + noise.astype(np.float32), -1.0, 1.0)
    return Conversation(samples, turns, [cast[s] for s in range(count)])


def frame_targets(conversation: Conversation, frames: int) -> np.ndarray:
    """The conversation's speaker activity per 80 ms frame (a frame is active when its centre is).

    Args:
        conversation: The conversation.
        frames: Output frames of the model for it.

    Returns:
        `(frames, NUM_SPEAKERS)` of 0/1, speakers in order of first appearance.
    """
    centres = (np.arange(frames) + 0.5) * FRAME_SECONDS
    targets = np.zeros((frames, NUM_SPEAKERS), np.float32)
    for speaker, start, end in conversation.turns:
        targets[(centres >= start) & (centres < end), speaker] = 1.0
    return targets


def model_config(streaming: bool) -> dict[str, Any]:
    """The model's configuration: Sortformer's architecture at test-fixture size.

    Args:
        streaming: Whether the model starts in streaming mode.

    Returns:
        A plain dict for `SortformerEncLabelModel(cfg=OmegaConf.create(...))`.
    """
    return {
        "sample_rate": SAMPLE_RATE,
        "max_num_of_spks": NUM_SPEAKERS,
        "pil_weight": 0.5,
        "ats_weight": 0.5,
        "streaming_mode": streaming,
        "model_defaults": {"fc_d_model": D_MODEL, "tf_d_model": D_MODEL},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": SAMPLE_RATE,
            # Not per_feature: normalizing each mel band per recording removes much of what makes a
            # voice recognizable (the speaker-ID pretraining did not learn at all with it).
            "normalize": "NA",
            "window_size": 0.025,
            "window_stride": 0.01,
            "window": "hann",
            "features": N_MELS,
            "n_fft": 512,
            "frame_splicing": 1,
            "dither": 1e-5,
        },
        "sortformer_modules": {
            "_target_": "nemo.collections.asr.modules.sortformer_modules.SortformerModules",
            "num_spks": NUM_SPEAKERS,
            "dropout_rate": DROPOUT,
            "fc_d_model": D_MODEL,
            "tf_d_model": D_MODEL,
            "subsampling_factor": 8,
            **STREAMING,
        },
        "encoder": fastconformer_encoder(
            N_MELS, D_MODEL, layers=3, conv_channels=CONV_CHANNELS, dropout=DROPOUT
        ),
        "transformer_encoder": {
            "_target_": "nemo.collections.asr.modules.transformer.transformer_encoders.TransformerEncoder",
            "num_layers": 2,
            "hidden_size": D_MODEL,
            "inner_size": 4 * D_MODEL,
            "num_attention_heads": 4,
            "attn_score_dropout": DROPOUT,
            "attn_layer_dropout": DROPOUT,
            "ffn_dropout": DROPOUT,
            "hidden_act": "relu",
            "pre_ln": False,
            "pre_ln_final_layer_norm": True,
        },
        "loss": {
            "_target_": "nemo.collections.asr.losses.bce_loss.BCELoss",
            "weight": None,
            "reduction": "mean",
        },
    }


def batch_of(conversations: list[Conversation]) -> tuple[torch.Tensor, ...]:
    """Pads conversations into `(signal, signal_length, targets, target_length)` tensors."""
    longest = max(c.samples.size for c in conversations)
    signal = torch.zeros(len(conversations), longest)
    for row, conversation in enumerate(conversations):
        signal[row, : conversation.samples.size] = torch.from_numpy(conversation.samples)
    lengths = torch.tensor([c.samples.size for c in conversations])
    frames = [output_frames(c.samples.size) for c in conversations]
    targets = torch.zeros(len(conversations), max(frames), NUM_SPEAKERS)
    for row, (conversation, count) in enumerate(zip(conversations, frames, strict=True)):
        targets[row, :count] = torch.from_numpy(frame_targets(conversation, count))
    return signal, lengths, targets, torch.tensor(frames)


def output_frames(samples: int) -> int:
    """The model's output frames for `samples` of audio (10 ms features, subsampled 8 times)."""
    return math.ceil((samples // 160 + 1) / 8)


def speaker_id_labels(conversation: Conversation, frames: int, index: dict[Speaker, int]) -> np.ndarray:
    """Which training speaker each 80 ms frame belongs to; -100 (ignored) for silence and overlap.

    Args:
        conversation: A conversation of training speakers.
        frames: Output frames of the model for it.
        index: Each training speaker's class.

    Returns:
        `(frames,)` class indices.
    """
    activity = frame_targets(conversation, frames)
    labels = np.full(frames, -100, np.int64)
    alone = activity.sum(axis=1) == 1
    classes = np.array([index[speaker] for speaker in conversation.speakers])
    labels[alone] = classes[activity[alone].argmax(axis=1)]
    return labels


def encode(model: Any, signal: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's frames for a batch, as `SortformerEncLabelModel.forward` computes them offline."""
    features, feature_lengths = model.process_signal(audio_signal=signal, audio_signal_length=lengths)
    return model.frontend_encoder(features[:, :, : feature_lengths.max()], feature_lengths)


class SpeakerIdHead(torch.nn.Module):
    """Says which training speaker an encoder frame (or a clip's mean frame) is; thrown away after.

    Sortformer's encoder starts from a pretrained speech encoder. A tiny one trained from scratch
    otherwise spends most of its time before its frames carry any voice identity at all, so the
    encoder first learns which training speaker says a clip, and keeps telling the speakers of each
    conversation frame apart as a side loss while the whole model learns to diarize.
    """

    def __init__(self, speakers: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(D_MODEL, speakers)

    def loss(self, frames: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Cross-entropy over the labelled frames, and the share of them classified right.

        Args:
            frames: `(batch, frames, D_MODEL)` encoder frames.
            labels: `(batch, frames)` classes, -100 where ignored.

        Returns:
            The loss and the accuracy.
        """
        logits = self.linear(frames[:, : labels.shape[1]])
        labels = labels[:, : logits.shape[1]]
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100)
        scored = labels != -100
        hits = (logits.argmax(-1) == labels)[scored].float().mean() if scored.any() else torch.tensor(0.0)
        return loss, float(hits)


def conversation_batch(
    rng: random.Random, pools: dict[Speaker, list[np.ndarray]], batch_size: int, turns: tuple[int, int]
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Composes a batch of training conversations with their diarization and speaker-ID targets.

    Args:
        rng: Source of the conversations.
        pools: Training clips by speaker.
        batch_size: Conversations.
        turns: The range of their number of turns.

    Returns:
        `batch_of`'s tensors and the `(batch, frames)` speaker-ID labels.
    """
    conversations = [make_conversation(rng, pools, turns) for _ in range(batch_size)]
    batch = batch_of(conversations)
    index = {speaker: number for number, speaker in enumerate(pools)}
    labels = torch.full(batch[2].shape[:2], -100, dtype=torch.long)
    for row, (conversation, frames) in enumerate(zip(conversations, batch[3].tolist(), strict=True)):
        labels[row, :frames] = torch.from_numpy(speaker_id_labels(conversation, frames, index))
    return batch, labels


def pretrain_encoder(
    model: Any,
    head: SpeakerIdHead,
    pools: dict[Speaker, list[np.ndarray]],
    steps: int,
    seed: int,
) -> dict[str, Any]:
    """Teaches the encoder to tell voices apart first: which training speaker says a single clip.

    Whole clips are classified by the head over the encoder's mean frame: in trials, this learned in
    a few hundred steps where classifying every frame of a conversation stayed at chance for as long.

    Args:
        model: The model (its encoder is trained).
        head: The speaker-ID head (trained with it).
        pools: Training clips by speaker.
        steps: Optimizer steps.
        seed: Seed of the clip draws.

    Returns:
        Steps, wall-clock minutes and the last 50 steps' speaker accuracy.
    """
    rng = random.Random(seed)
    speakers = list(pools)
    optimizer = torch.optim.AdamW([*model.encoder.parameters(), *head.parameters()], lr=PRETRAIN_LR)
    model.train()
    started = time.monotonic()
    hits: list[float] = []
    for step in range(steps):
        labels = [rng.randrange(len(speakers)) for _ in range(PRETRAIN_CLIPS)]
        clips = [rng.choice(pools[speakers[label]]) * rng.uniform(0.3, 0.9) for label in labels]
        signal = torch.zeros(len(clips), max(clip.size for clip in clips))
        for row, clip in enumerate(clips):
            signal[row, : clip.size] = torch.from_numpy(clip.astype(np.float32))
        frames, frame_lengths = encode(model, signal, torch.tensor([clip.size for clip in clips]))
        mask = model.sortformer_modules.length_to_mask(frame_lengths, frames.shape[1]).unsqueeze(-1)
        logits = head.linear((frames * mask).sum(1) / frame_lengths.unsqueeze(-1))
        target = torch.tensor(labels)
        loss = torch.nn.functional.cross_entropy(logits, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        hits.append(float((logits.argmax(-1) == target).float().mean()))
        if (step + 1) % 100 == 0:
            minutes = (time.monotonic() - started) / 60
            print(
                f"pretrain {step + 1}/{steps}  speaker accuracy {np.mean(hits[-50:]):.3f}  {minutes:.1f} min",
                flush=True,
            )
    return {
        "steps": steps,
        "wall_minutes": round((time.monotonic() - started) / 60, 2),
        "speaker_accuracy": round(float(np.mean(hits[-50:])), 3) if hits else None,
    }


def train(
    model: Any,
    head: SpeakerIdHead,
    pools: dict[Speaker, list[np.ndarray]],
    steps: int,
    batch_size: int,
    turns: tuple[int, int],
    max_minutes: float,
    seed: int,
) -> dict[str, Any]:
    """Trains on freshly composed conversations with AdamW, warm-up and cosine decay.

    The learning rate decays with whichever runs out first, steps or minutes, so a run cut short by
    the clock still ends at the low learning rate.

    Args:
        model: The model.
        head: The speaker-ID head, whose loss is added with weight `SPEAKER_ID_WEIGHT`.
        pools: Training clips by speaker.
        steps: Optimizer steps at most.
        batch_size: Conversations per step.
        turns: The range of the conversations' number of turns.
        max_minutes: Training stops once it has run this long.
        seed: Seed of the conversations.

    Returns:
        Steps completed, wall-clock minutes and the last 100 steps' mean loss.
    """
    from nemo.collections.asr.parts.utils.asr_multispeaker_utils import get_ats_targets, get_pil_targets

    rng = random.Random(seed)
    torch.manual_seed(seed)
    warmup = min(WARMUP_STEPS, steps // 10)
    parameters = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=PEAK_LR, betas=(0.9, 0.98), weight_decay=1e-3)
    model.train()
    started = time.monotonic()
    losses: list[float] = []
    done = 0
    for step in range(steps):
        elapsed = (time.monotonic() - started) / 60
        progress = max((step - warmup) / max(1, steps - warmup), elapsed / max_minutes)
        for group in optimizer.param_groups:
            group["lr"] = PEAK_LR * warmup_cosine_factor(step, warmup, progress, MIN_LR / PEAK_LR)
        (signal, lengths, targets, target_lengths), labels = conversation_batch(rng, pools, batch_size, turns)
        frames, frame_lengths = encode(model, signal, lengths)
        preds = model.forward_infer(frames, frame_lengths)
        targets = targets[:, : preds.shape[1]]
        target_lengths = target_lengths.clamp(max=preds.shape[1])
        ats = get_ats_targets(targets.clone(), preds, speaker_permutations=model.speaker_permutations)
        pil = get_pil_targets(targets.clone(), preds, speaker_permutations=model.speaker_permutations)
        loss = model.ats_weight * model.loss(probs=preds, labels=ats, target_lens=target_lengths)
        loss = loss + model.pil_weight * model.loss(probs=preds, labels=pil, target_lens=target_lengths)
        loss = loss + SPEAKER_ID_WEIGHT * head.loss(frames, labels)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(loss.item())
        done = step + 1
        elapsed = (time.monotonic() - started) / 60
        if done % 100 == 0:
            print(f"step {done}/{steps}  loss {np.mean(losses[-100:]):.4f}  {elapsed:.1f} min", flush=True)
        if elapsed > max_minutes:
            print(f"stopping: training passed --max-minutes {max_minutes}", flush=True)
            break
    model.eval()
    return {
        "steps": done,
        "wall_minutes": round((time.monotonic() - started) / 60, 2),
        "final_loss": round(float(np.mean(losses[-100:])), 4),
    }


def frame_der(reference: np.ndarray, activity: np.ndarray, collar_frames: int) -> tuple[float, float]:
    """Frame-level diarization error with the best speaker mapping, frames near a boundary excluded.

    Args:
        reference: `(frames, speakers)` 0/1 truth.
        activity: `(frames, speakers)` 0/1 hypothesis.
        collar_frames: Frames either side of each reference boundary left out of scoring.

    Returns:
        `(errors, scored reference speaker-frames)`: missed, false-alarm and confused speaker-frames
        (NIST's definition), summed.
    """
    frames = min(len(reference), len(activity))
    reference, activity = reference[:frames], activity[:frames]
    scored = np.ones(frames, bool)
    changes = np.flatnonzero(np.any(np.diff(reference, axis=0) != 0, axis=1)) + 1
    for change in changes:
        scored[max(0, change - collar_frames) : change + collar_frames] = False
    reference, activity = reference[scored], activity[scored]
    best = max(
        float((reference * activity[:, list(order)]).sum())
        for order in itertools.permutations(range(activity.shape[1]))
    )
    ref_count, hyp_count = reference.sum(axis=1), activity.sum(axis=1)
    errors = float(np.maximum(ref_count, hyp_count).sum()) - best
    return errors, float(ref_count.sum())


def held_out_der(model_path: Path, conversations: list[Conversation], streaming: bool) -> float:
    """Restores the saved model the way the worker loads it and measures DER on `conversations`.

    The activity comes from the worker's own diarizer code (`utils.speakers.diarizer`), so the figure
    is what the worker's speakers are made of.

    Args:
        model_path: The `.nemo` file.
        conversations: Held-out conversations.
        streaming: Whether to run the model's streaming mode (else offline, whatever the length).

    Returns:
        The DER, collar 0.25 s.
    """
    from nemo.collections.asr.models import SortformerEncLabelModel

    import config
    from utils.speakers.diarizer import LoadedDiarizer, speaker_activity

    model = SortformerEncLabelModel.restore_from(str(model_path), map_location="cpu")
    model.eval()
    # The mode asked for, whatever the length (the worker picks it by length).
    config.DIARIZER_STREAMING_ABOVE_SECONDS = 0.0 if streaming else math.inf
    loaded = LoadedDiarizer(model, str(model_path), False, FRAME_SECONDS, "file")
    errors = total = 0.0
    collar = round(COLLAR_SECONDS / FRAME_SECONDS)
    for conversation in conversations:
        probabilities = speaker_activity(loaded, conversation.samples).probabilities
        activity = (probabilities >= 0.5).astype(np.float32)
        wrong, scored = frame_der(frame_targets(conversation, len(activity)), activity, collar)
        errors, total = errors + wrong, total + scored
    return errors / total


def long_conversation(
    rng: random.Random, pools: dict[Speaker, list[np.ndarray]], seconds: float, turns: tuple[int, int]
) -> Conversation:
    """Joins conversations among the same cast until `seconds`, for the streaming measurement."""
    cast = {speaker: pools[speaker] for speaker in draw_cast(rng, list(pools), 3)}
    parts: list[Conversation] = []
    while sum(p.seconds for p in parts) < seconds:
        parts.append(make_conversation(rng, cast, turns))
    timed: list[tuple[int, float, float]] = []
    offset, speakers = 0.0, list(cast)
    for part in parts:
        for speaker, start, end in part.turns:
            timed.append((speakers.index(part.speakers[speaker]), start + offset, end + offset))
        offset += part.seconds
    order = list(dict.fromkeys(speaker for speaker, _, _ in timed))
    timed = [(order.index(speaker), start, end) for speaker, start, end in timed]
    return Conversation(np.concatenate([p.samples for p in parts]), timed, [speakers[s] for s in order])


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Reads the command line.

    Args:
        argv: Arguments after the program name.

    Returns:
        The parsed options.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the .nemo to write; the card goes beside it")
    parser.add_argument("--seed", type=int, default=1234, help="seed of every random choice")
    parser.add_argument("--train-speakers", type=int, default=160, help="synthetic training speakers")
    parser.add_argument("--held-out-speakers", type=int, default=24, help="synthetic held-out speakers")
    parser.add_argument("--held-out-conversations", type=int, default=60)
    parser.add_argument("--init", type=Path, help="continue training this .nemo (no pretraining)")
    parser.add_argument("--pretrain-steps", type=int, default=800, help="speaker-ID steps for the encoder")
    parser.add_argument("--steps", type=int, default=5000, help="at most; --max-minutes usually ends it")
    parser.add_argument("--batch-size", type=int, default=6, help="conversations per step")
    parser.add_argument(
        "--turns",
        type=int,
        nargs=2,
        default=list(TURNS_PER_CONVERSATION),
        metavar=("MIN", "MAX"),
        help="turns of a conversation of several speakers, for training and the held-out set",
    )
    parser.add_argument("--max-minutes", type=float, default=20.0, help="stop training early past this")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Synthesizes the speakers, trains, saves the model, measures held-out DER and writes the card.

    Args:
        argv: Arguments after the program name.

    Returns:
        The process exit status.
    """
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    check_voices_exist(["en"])

    from nemo.collections.asr.models import SortformerEncLabelModel
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(nemo_logging.WARNING)
    english = voice_splits(["en"], args.seed)[0]
    train_voices, held_out_voices = english.train, english.held_out
    started = time.monotonic()
    rng = random.Random(args.seed)
    train_pools = synthesize_clips(rng, make_speakers(rng, train_voices, args.train_speakers))
    held_out_pools = synthesize_clips(rng, make_speakers(rng, held_out_voices, args.held_out_speakers))
    turns = tuple(args.turns)
    held_out = [make_conversation(rng, held_out_pools, turns) for _ in range(args.held_out_conversations)]
    long_held_out = long_conversation(rng, held_out_pools, 240.0, turns)
    synth_minutes = round((time.monotonic() - started) / 60, 2)
    print(f"speakers synthesized in {synth_minutes:.1f} min", flush=True)

    torch.manual_seed(args.seed)
    if args.init is not None:
        model = SortformerEncLabelModel.restore_from(str(args.init), map_location="cpu")
    else:
        model = SortformerEncLabelModel(cfg=OmegaConf.create(model_config(streaming=False)))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters", flush=True)
    head = SpeakerIdHead(len(train_pools))
    pretrain_steps = 0 if args.init is not None else args.pretrain_steps
    pretraining = pretrain_encoder(model, head, train_pools, pretrain_steps, args.seed)
    budget = args.max_minutes - pretraining["wall_minutes"]
    training = train(model, head, train_pools, args.steps, args.batch_size, turns, budget, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save_to(str(args.out))
    der = held_out_der(args.out, held_out, streaming=False)
    der_streaming = held_out_der(args.out, [long_held_out], streaming=True)
    der_long_offline = held_out_der(args.out, [long_held_out], streaming=False)
    print(
        f"held-out DER {der:.4f}; {long_held_out.seconds:.0f} s conversation: "
        f"streaming {der_streaming:.4f}, offline {der_long_offline:.4f}",
        flush=True,
    )
    card = {
        "model": args.out.name,
        "command": "python -m tools.train_test_diarizer " + " ".join(argv),
        "seed": args.seed,
        "architecture": {
            "class": "SortformerEncLabelModel",
            "encoder": f"FastConformer, 3 layers, d_model {D_MODEL}, dw_striding x8, rel_pos",
            "transformer_encoder": f"2 layers, hidden {D_MODEL}",
            "speakers": NUM_SPEAKERS,
            "streaming": STREAMING,
            "parameters": n_params,
        },
        "corpus": {
            "synthesizer": "espeak-ng",
            "words_per_turn": list(TURN_WORDS),
            "speakers_per_conversation": [list(pair) for pair in SPEAKERS_PER_CONVERSATION],
            "turns_per_conversation": list(turns),
            "pause_seconds": list(PAUSE_SECONDS),
            "overlap_fraction": OVERLAP_FRACTION,
            "train_speakers": len(train_pools),
            "held_out_speakers": len(held_out_pools),
            "held_out_voices": sorted({speaker.voice for speaker in held_out_pools}),
            "held_out_conversations": len(held_out),
            "held_out_minutes": round(sum(c.seconds for c in held_out) / 60, 2),
        },
        "synthesis_wall_minutes": synth_minutes,
        "encoder_pretraining": {**pretraining, "task": "speaker identification of single clips"},
        "training": {**training, "steps_requested": args.steps, "batch_size": args.batch_size},
        "training_wall_minutes": round(pretraining["wall_minutes"] + training["wall_minutes"], 2),
        "held_out_der": round(der, 4),
        "collar_seconds": COLLAR_SECONDS,
        "long_conversation": {
            "seconds": round(long_held_out.seconds, 1),
            "der_streaming": round(der_streaming, 4),
            "der_offline": round(der_long_offline, 4),
        },
        "nemo_bytes": args.out.stat().st_size,
        "versions": {"nemo_toolkit": package_version("nemo_toolkit"), "torch": torch.__version__},
    }
    card_path = args.out.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.out} ({card['nemo_bytes']} bytes) and {card_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
