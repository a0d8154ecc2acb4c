"""Trains the bundled test models: tiny Parakeet-family ASR models that really transcribe spoken digits.

The model is the same family as `nvidia/parakeet-tdt-0.6b-v3`, shrunk: `EncDecRNNTBPEModel` with a
FastConformer encoder (`dw_striding` subsampling x8, `rel_pos` attention, 2 layers, d_model 64 unless
told otherwise), an LSTM prediction network, a TDT joint with durations [0, 1, 2, 3, 4], `greedy_batch`
TDT decoding and a SentencePiece BPE tokenizer. It learns the ten digit words of each language asked for
("zero" ... "nine", "null" ... "neun") from speech synthesized with espeak-ng across that language's
voices, voice variants, speeds and pitches, on CPU in minutes. Each utterance is in one language.

NeMo 3.0.0's TDT losses need CUDA, so training swaps `tools.cpu_tdt_loss.CpuTDTLoss` into the model's
`RNNTLoss` wrapper; the saved model keeps `loss_name: tdt` and is an ordinary NeMo TDT model.

The held-out set uses voice+variant pairs and speeds that training never saw (pitches are drawn from
the same range). After training the tool saves the `.nemo`, restores it with `ASRModel.restore_from`,
transcribes the held-out set with NeMo's own `transcribe()` and writes the word error rate, with the
command, seeds, corpus sizes and vocabulary, to a JSON card beside the model.

Rebuild the committed fixtures (no network, no GPU) from the repository root. The English model takes
about 10 minutes on 2 CPU cores:

    .venv/bin/python -m tools.train_test_model --out tests/fixtures/parakeet-tdt-digits.nemo

The multilingual one (English, German, French, Spanish and Italian) takes about 50 minutes:

    .venv/bin/python -m tools.train_test_model --out tests/fixtures/parakeet-tdt-digits-multilingual.nemo \
        --languages en,de,fr,es,it --train-minutes 60 --held-out-minutes 5 --d-model 96 --vocab-size 96

Every random choice (corpus, split, initialization, batches, augmentation) follows `--seed`, so a
rebuild gives a model of the same quality; the weights are not bit-identical across machines because
CPU kernels and thread counts differ. Requires espeak-ng on PATH.
"""

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from tools.cpu_tdt_loss import CpuTDTLoss
from tools.synth import DIGIT_WORDS_BY_LANGUAGE, SAMPLE_RATE, synthesize, trim_silence
from tools.training import fastconformer_encoder, package_version, warmup_cosine

# espeak-ng's own voices for each language (`espeak-ng --voices=<code>`); the mb-* ones need MBROLA and
# are left out. Every voice is combined with every variant below, so each language has dozens of voices.
LANGUAGE_VOICES = {
    "en": (
        "en-us",
        "en-gb",
        "en-gb-scotland",
        "en-gb-x-gbclan",
        "en-gb-x-gbcwmd",
        "en-gb-x-rp",
        "en-029",
        "en-us-nyc",
    ),
    "de": ("de",),
    "fr": ("fr-fr", "fr-be", "fr-ch"),
    "es": ("es", "es-419"),
    "it": ("it",),
}
# Variants (`espeak-ng --voices=variant`) that still sound like speech; "" is the voice's own sound.
# Whispers, croaks and robot effects are left out: the model is meant to be small, not robust to them.
VARIANTS = (
    "",
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "benjamin", "boris", "david", "ed", "edward",
    "Gene", "grandma", "grandpa", "iven", "john", "klatt", "klatt2", "klatt3", "Lee", "linda", "max",
    "Michael", "norbert", "paul", "quincy", "rob", "robert", "sandro", "shelby", "steph", "travis",
    "victor", "zac",
)  # fmt: skip
TRAIN_SPEEDS = (120, 140, 160, 180, 200, 220)
HELD_OUT_SPEEDS = (130, 150, 170, 190, 210)
PITCH_RANGE = (25, 75)
HELD_OUT_PAIR_FRACTION = 0.15
MIN_WORDS, MAX_WORDS = 1, 7
# Part of the corpus is built from single-word clips joined by pauses, as the timestamp tests do.
CONCATENATED_FRACTION = 0.3
NOISY_FRACTION = 0.5
SNR_DB_RANGE = (15.0, 40.0)

DURATIONS = [0, 1, 2, 3, 4]
N_MELS = 80
PEAK_LR = 3e-3
MIN_LR = 5e-5
BUCKET_POOL_BATCHES = 16


@dataclass
class Utterance:
    """One corpus item: samples at 16 kHz, the words spoken and who spoke them in which language."""

    samples: np.ndarray
    text: str
    voice: str
    speed: int
    language: str


@dataclass(frozen=True)
class VoiceSplit:
    """One language's voice+variant pairs, split into those trained on and those held out."""

    language: str
    train: list[str]
    held_out: list[str]


def voice_splits(languages: list[str], seed: int) -> list[VoiceSplit]:
    """Splits every voice+variant pair of each language into training pairs and held-out pairs.

    Args:
        languages: Language codes, keys of `LANGUAGE_VOICES`.
        seed: Seed of the shuffles (one generator, drawn from language by language in order).

    Returns:
        One split per language, with espeak-ng voice names (`en-gb+f3`, `de`).
    """
    rng = random.Random(seed)
    splits = []
    for language in languages:
        pairs = [
            voice + (f"+{variant}" if variant else "")
            for voice in LANGUAGE_VOICES[language]
            for variant in VARIANTS
        ]
        rng.shuffle(pairs)
        n_held_out = round(len(pairs) * HELD_OUT_PAIR_FRACTION)
        splits.append(VoiceSplit(language, sorted(pairs[n_held_out:]), sorted(pairs[:n_held_out])))
    return splits


def check_voices_exist(languages: list[str]) -> None:
    """Fails early when this espeak-ng lacks a voice or variant (it silently ignores unknown variants).

    Args:
        languages: Language codes, keys of `LANGUAGE_VOICES`.

    Raises:
        RuntimeError: A configured voice or variant is missing.
    """

    def listed(kind: str, column: int) -> set[str]:
        lines = subprocess.run(
            ["espeak-ng", f"--voices={kind}"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[1:]
        # Voices are named by their language column; variants by their file name ("!v/f3" -> "f3").
        return {line.split()[column].rsplit("/", 1)[-1] for line in lines}

    voices = {voice for language in languages for voice in LANGUAGE_VOICES[language]}
    known = set().union(*(listed(language, 1) for language in languages))
    missing = sorted(voices - known) + sorted(set(filter(None, VARIANTS)) - listed("variant", 4))
    if missing:
        raise RuntimeError(f"espeak-ng lacks these voices/variants: {missing}")


def make_utterance(rng: random.Random, language: str, voice: str, speed: int) -> Utterance:
    """Synthesizes one random digit string, fluent or as single-word clips joined by pauses.

    Args:
        rng: Source of every random choice.
        language: Whose digit words to say, a key of `DIGIT_WORDS_BY_LANGUAGE`.
        voice: espeak-ng voice of that language, with its variant.
        speed: Words per minute.

    Returns:
        The utterance, with light gain, padding and (sometimes) noise applied.
    """
    vocabulary = DIGIT_WORDS_BY_LANGUAGE[language]
    words = [rng.choice(vocabulary) for _ in range(rng.randint(MIN_WORDS, MAX_WORDS))]
    pitch = rng.randint(*PITCH_RANGE)
    if rng.random() < CONCATENATED_FRACTION:
        pieces = [np.zeros(int(rng.uniform(0.05, 0.4) * SAMPLE_RATE), np.float32)]
        for word in words:
            pieces.append(trim_silence(synthesize(word, voice, speed, pitch)))
            pieces.append(np.zeros(int(rng.uniform(0.05, 0.5) * SAMPLE_RATE), np.float32))
        samples = np.concatenate(pieces)
    else:
        samples = synthesize(" ".join(words), voice, speed, pitch)
    samples = samples / max(float(np.abs(samples).max()), 1e-6) * rng.uniform(0.2, 0.95)
    if rng.random() < NOISY_FRACTION:
        signal_power = float(np.mean(samples**2))
        noise_power = signal_power / 10 ** (rng.uniform(*SNR_DB_RANGE) / 10)
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0.0, math.sqrt(noise_power), samples.size)
        samples = samples + noise.astype(np.float32)
    samples = np.clip(samples, -1.0, 1.0).astype(np.float32)
    return Utterance(samples, " ".join(words), voice, speed, language)


def make_corpus(
    rng: random.Random, language: str, voices: list[str], speeds: tuple[int, ...], minutes: float
) -> list[Utterance]:
    """Synthesizes utterances in one language until their total length reaches `minutes`.

    Args:
        rng: Source of every random choice.
        language: The language spoken.
        voices: Voices to draw from.
        speeds: Speeds to draw from.
        minutes: Total audio length wanted.

    Returns:
        The utterances.
    """
    corpus: list[Utterance] = []
    total_samples = 0
    while total_samples < minutes * 60 * SAMPLE_RATE:
        corpus.append(make_utterance(rng, language, rng.choice(voices), rng.choice(speeds)))
        total_samples += corpus[-1].samples.size
    return corpus


def corpus_summary(corpus: list[Utterance]) -> dict[str, Any]:
    """Sizes of a corpus for the card.

    Args:
        corpus: The utterances.

    Returns:
        Utterance, word and minute counts.
    """
    return {
        "utterances": len(corpus),
        "words": sum(len(item.text.split()) for item in corpus),
        "minutes": round(sum(item.samples.size for item in corpus) / SAMPLE_RATE / 60, 2),
    }


def train_tokenizer(texts: list[str], directory: Path, vocab_size: int) -> None:
    """Trains a SentencePiece BPE tokenizer and writes it the way NeMo's `tokenizer.dir` expects.

    Args:
        texts: Training transcripts.
        directory: Receives `tokenizer.model`, `tokenizer.vocab` and `vocab.txt`.
        vocab_size: Number of pieces.
    """
    import sentencepiece as spm

    directory.mkdir(parents=True, exist_ok=True)
    text_file = directory / "text.txt"
    text_file.write_text("\n".join(texts) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(text_file),
        model_prefix=str(directory / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        num_threads=1,
        minloglevel=2,
    )
    text_file.unlink()
    processor = spm.SentencePieceProcessor(model_file=str(directory / "tokenizer.model"))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    (directory / "vocab.txt").write_text("\n".join(pieces) + "\n")


def model_config(tokenizer_dir: Path, d_model: int, layers: int) -> dict[str, Any]:
    """The model's configuration: Parakeet TDT's architecture at test-fixture size.

    Args:
        tokenizer_dir: Directory written by `train_tokenizer`.
        d_model: Width of the encoder, and of the prediction and joint networks.
        layers: Conformer layers.

    Returns:
        A plain dict for `EncDecRNNTBPEModel(cfg=OmegaConf.create(...))`.
    """
    return {
        "sample_rate": SAMPLE_RATE,
        "compute_eval_loss": False,
        "log_prediction": False,
        "model_defaults": {
            "enc_hidden": d_model,
            "pred_hidden": d_model,
            "joint_hidden": d_model,
            "tdt_durations": DURATIONS,
            "num_tdt_durations": len(DURATIONS),
        },
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": SAMPLE_RATE,
            "normalize": "per_feature",
            "window_size": 0.025,
            "window_stride": 0.01,
            "window": "hann",
            "features": N_MELS,
            "n_fft": 512,
            "log": True,
            "frame_splicing": 1,
            "dither": 1e-5,
            "pad_to": 0,
            "pad_value": 0.0,
        },
        "spec_augment": {
            "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "freq_masks": 2,
            "time_masks": 2,
            "freq_width": 12,
            "time_width": 0.05,
        },
        "encoder": fastconformer_encoder(N_MELS, d_model, layers=layers, conv_channels=d_model),
        "decoder": {
            "_target_": "nemo.collections.asr.modules.RNNTDecoder",
            "normalization_mode": None,
            "random_state_sampling": False,
            "blank_as_pad": True,
            "prednet": {"pred_hidden": d_model, "pred_rnn_layers": 1, "t_max": None, "dropout": 0.1},
        },
        "joint": {
            "_target_": "nemo.collections.asr.modules.RNNTJoint",
            "log_softmax": None,
            "preserve_memory": False,
            "fuse_loss_wer": False,
            "fused_batch_size": 4,
            "num_extra_outputs": len(DURATIONS),
            "jointnet": {"joint_hidden": d_model, "activation": "relu", "dropout": 0.1},
        },
        "decoding": {
            "strategy": "greedy_batch",
            "model_type": "tdt",
            "durations": DURATIONS,
            "greedy": {"max_symbols": 10},
        },
        "loss": {
            "loss_name": "tdt",
            "tdt_kwargs": {
                "fastemit_lambda": 0.0,
                "clamp": -1.0,
                "durations": DURATIONS,
                "sigma": 0.0,
                "omega": 0.0,
            },
        },
    }


def install_cpu_tdt_loss(model: Any) -> None:
    """Replaces the CUDA-only TDT kernel inside the model's `RNNTLoss` with `CpuTDTLoss`.

    NeMo's wrapper keeps doing the casting, trimming and `mean_batch` reduction; only the kernel changes,
    and the model's config (what `save_to` writes) still says `loss_name: tdt`.

    Args:
        model: An `EncDecRNNTBPEModel` built with `loss_name: tdt`.
    """
    kwargs = model.cfg.loss.tdt_kwargs
    model.loss._loss = CpuTDTLoss(
        blank=model.loss._blank, durations=list(kwargs.durations), sigma=kwargs.sigma
    )


def batches(
    corpus: list[Utterance], tokenizer: Any, batch_size: int, rng: random.Random
) -> list[tuple[torch.Tensor, ...]]:
    """Shuffles the corpus into padded batches of utterances of similar length.

    Args:
        corpus: Training utterances.
        tokenizer: The model's tokenizer (`text_to_ids`).
        batch_size: Utterances per batch.
        rng: Source of the shuffle.

    Returns:
        `(signal, signal_length, tokens, token_length)` tuples, as NeMo's training_step takes them.
    """
    order = list(range(len(corpus)))
    rng.shuffle(order)
    # Batches of similar lengths waste less compute on padding; pools keep the batches varied.
    pool = batch_size * BUCKET_POOL_BATCHES
    order = [
        i
        for start in range(0, len(order), pool)
        for i in sorted(order[start : start + pool], key=lambda i: corpus[i].samples.size)
    ]
    groups = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    rng.shuffle(groups)
    result = []
    for group in groups:
        items = [corpus[i] for i in group]
        token_ids = [tokenizer.text_to_ids(item.text) for item in items]
        signal = torch.zeros(len(items), max(item.samples.size for item in items))
        tokens = torch.zeros(len(items), max(len(ids) for ids in token_ids), dtype=torch.long)
        for row, (item, ids) in enumerate(zip(items, token_ids, strict=True)):
            signal[row, : item.samples.size] = torch.from_numpy(item.samples)
            tokens[row, : len(ids)] = torch.tensor(ids)
        signal_length = torch.tensor([item.samples.size for item in items])
        token_length = torch.tensor([len(ids) for ids in token_ids])
        result.append((signal, signal_length, tokens, token_length))
    return result


def train(
    model: Any, corpus: list[Utterance], epochs: int, batch_size: int, max_minutes: float, seed: int
) -> dict[str, Any]:
    """Trains with AdamW, linear warm-up and cosine decay, the way NeMo's training_step computes loss.

    Args:
        model: The model, with `install_cpu_tdt_loss` applied.
        corpus: Training utterances.
        epochs: Passes over the corpus.
        batch_size: Utterances per step.
        max_minutes: Stop early once training has run this long (a safety cap, not the normal end).
        seed: Seed of batch order, dropout and augmentation.

    Returns:
        Epochs and steps completed, wall-clock minutes spent and the last epoch's mean loss.
    """
    rng = random.Random(seed)
    torch.manual_seed(seed)
    steps_per_epoch = math.ceil(len(corpus) / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup = min(300, total_steps // 10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR, betas=(0.9, 0.98), weight_decay=1e-3)

    scheduler = warmup_cosine(optimizer, PEAK_LR, MIN_LR, warmup, total_steps)
    model.train()
    started = time.monotonic()
    step = 0
    epoch_loss = float("nan")
    epochs_done = 0
    for epoch in range(epochs):
        losses = []
        for signal, signal_length, tokens, token_length in batches(corpus, model.tokenizer, batch_size, rng):
            encoded, encoded_length = model.forward(input_signal=signal, input_signal_length=signal_length)
            decoder_out, target_length, _ = model.decoder(targets=tokens, target_length=token_length)
            joint = model.joint(encoder_outputs=encoded, decoder_outputs=decoder_out)
            loss = model.loss(
                log_probs=joint, targets=tokens, input_lengths=encoded_length, target_lengths=target_length
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            step += 1
        epochs_done = epoch + 1
        epoch_loss = float(np.mean(losses))
        elapsed = (time.monotonic() - started) / 60
        print(
            f"epoch {epochs_done}/{epochs}  steps {step}  loss {epoch_loss:.4f}  {elapsed:.1f} min",
            flush=True,
        )
        if elapsed > max_minutes:
            print(f"stopping: training passed --max-minutes {max_minutes}", flush=True)
            break
    model.eval()
    return {
        "epochs": epochs_done,
        "steps": step,
        "wall_minutes": round((time.monotonic() - started) / 60, 2),
        "final_epoch_loss": round(epoch_loss, 4),
    }


@dataclass(frozen=True)
class HeldOutResult:
    """How the saved model did on the held-out corpus: WER in all and per language, and its mistakes."""

    wer: float
    wer_by_language: dict[str, float]
    errors: list[dict[str, str]]


def held_out_wer(model_path: Path, corpus: list[Utterance]) -> HeldOutResult:
    """Restores the saved model the way users load it and measures WER with NeMo's `transcribe()`.

    Args:
        model_path: The `.nemo` file.
        corpus: Held-out utterances.

    Returns:
        The word error rates and every utterance the model got wrong (reference, hypothesis, voice).
    """
    from nemo.collections.asr.metrics.wer import word_error_rate
    from nemo.collections.asr.models import ASRModel

    restored = ASRModel.restore_from(str(model_path), map_location="cpu")
    restored.eval()
    hypotheses = restored.transcribe([item.samples for item in corpus], batch_size=32, verbose=False)
    texts = [hypothesis.text.strip() for hypothesis in hypotheses]
    references = [item.text for item in corpus]
    errors = [
        {
            "reference": ref,
            "hypothesis": hyp,
            "language": item.language,
            "voice": item.voice,
            "speed": str(item.speed),
        }
        for ref, hyp, item in zip(references, texts, corpus, strict=True)
        if ref != hyp
    ]
    by_language = {}
    for language in dict.fromkeys(item.language for item in corpus):
        rows = [i for i, item in enumerate(corpus) if item.language == language]
        by_language[language] = word_error_rate([texts[i] for i in rows], [references[i] for i in rows])
    return HeldOutResult(word_error_rate(texts, references), by_language, errors)


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
    parser.add_argument(
        "--languages",
        type=lambda value: value.split(","),
        default=["en"],
        help=f"comma-separated codes of the languages to learn, of {','.join(LANGUAGE_VOICES)}",
    )
    parser.add_argument(
        "--train-minutes", type=float, default=90.0, help="training corpus length per language"
    )
    parser.add_argument(
        "--held-out-minutes", type=float, default=10.0, help="held-out corpus length per language"
    )
    parser.add_argument("--d-model", type=int, default=64, help="width of the encoder and networks")
    parser.add_argument("--layers", type=int, default=2, help="conformer layers")
    parser.add_argument("--vocab-size", type=int, default=32, help="SentencePiece pieces")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop training early past this")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Synthesizes the corpus, trains, saves the model, measures held-out WER and writes the card.

    Args:
        argv: Arguments after the program name.

    Returns:
        The process exit status.
    """
    args = parse_args(argv)
    unknown = sorted(set(args.languages) - set(LANGUAGE_VOICES))
    if unknown:
        print(f"--languages: unknown {unknown}; known: {sorted(LANGUAGE_VOICES)}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    check_voices_exist(args.languages)

    import nemo.collections.asr as nemo_asr
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(nemo_logging.WARNING)
    splits = voice_splits(args.languages, args.seed)
    work_dir = Path(tempfile.mkdtemp(prefix="parakeet-test-model-"))
    try:
        started = time.monotonic()
        rng = random.Random(args.seed)
        train_corpus = [
            item
            for split in splits
            for item in make_corpus(rng, split.language, split.train, TRAIN_SPEEDS, args.train_minutes)
        ]
        held_out_corpus = [
            item
            for split in splits
            for item in make_corpus(
                rng, split.language, split.held_out, HELD_OUT_SPEEDS, args.held_out_minutes
            )
        ]
        synth_minutes = round((time.monotonic() - started) / 60, 2)
        print(
            f"corpus synthesized in {synth_minutes:.1f} min: train {corpus_summary(train_corpus)}, "
            f"held-out {corpus_summary(held_out_corpus)}",
            flush=True,
        )

        train_tokenizer([item.text for item in train_corpus], work_dir / "tokenizer", args.vocab_size)
        torch.manual_seed(args.seed)
        cfg = model_config(work_dir / "tokenizer", args.d_model, args.layers)
        model = nemo_asr.models.EncDecRNNTBPEModel(cfg=OmegaConf.create(cfg))
        install_cpu_tdt_loss(model)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"model: {n_params} parameters, vocabulary {list(model.tokenizer.vocab)}", flush=True)

        training = train(model, train_corpus, args.epochs, args.batch_size, args.max_minutes, args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        model.save_to(str(args.out))
        result = held_out_wer(args.out, held_out_corpus)
        by_language = ", ".join(f"{code} {wer:.4f}" for code, wer in result.wer_by_language.items())
        print(
            f"held-out WER {result.wer:.4f} ({by_language}; {len(result.errors)} utterances wrong)",
            flush=True,
        )
        for error in result.errors:
            print(f"  {error}", flush=True)

        card = {
            "model": args.out.name,
            "command": "python -m tools.train_test_model " + " ".join(argv),
            "seed": args.seed,
            "architecture": {
                "class": "EncDecRNNTBPEModel",
                "encoder": (
                    f"FastConformer, {args.layers} layers, d_model {args.d_model}, dw_striding x8, rel_pos"
                ),
                "decoder": f"RNN-T prediction network (1-layer LSTM, {args.d_model})",
                "joint": f"TDT, durations {DURATIONS}",
                "decoding": "greedy_batch (TDT)",
                "loss": "tdt (trained on CPU with tools.cpu_tdt_loss.CpuTDTLoss)",
                "parameters": n_params,
            },
            "languages": {
                split.language: {
                    "words": list(DIGIT_WORDS_BY_LANGUAGE[split.language]),
                    "held_out_voices": split.held_out,
                    "held_out_wer": round(result.wer_by_language[split.language], 4),
                }
                for split in splits
            },
            "vocabulary": {
                "words": list(
                    dict.fromkeys(w for code in args.languages for w in DIGIT_WORDS_BY_LANGUAGE[code])
                ),
                "tokenizer": f"SentencePiece BPE, {args.vocab_size} pieces",
                "pieces": list(model.tokenizer.vocab),
            },
            "corpus": {
                "synthesizer": "espeak-ng",
                "words_per_utterance": [MIN_WORDS, MAX_WORDS],
                "pitch_range": list(PITCH_RANGE),
                "concatenated_word_clips_fraction": CONCATENATED_FRACTION,
                "white_noise_fraction": NOISY_FRACTION,
                "snr_db_range": list(SNR_DB_RANGE),
                "train": {
                    **corpus_summary(train_corpus),
                    "voices": sorted(voice for split in splits for voice in split.train),
                    "speeds": list(TRAIN_SPEEDS),
                },
                "held_out": {
                    **corpus_summary(held_out_corpus),
                    "voices": sorted(voice for split in splits for voice in split.held_out),
                    "speeds": list(HELD_OUT_SPEEDS),
                },
            },
            "synthesis_wall_minutes": synth_minutes,
            "training": {
                **training,
                "epochs_requested": args.epochs,
                "batch_size": args.batch_size,
                "threads": args.threads,
            },
            "held_out_wer": round(result.wer, 4),
            "held_out_errors": result.errors,
            "nemo_bytes": args.out.stat().st_size,
            "versions": {"nemo_toolkit": package_version("nemo_toolkit"), "torch": torch.__version__},
        }
        card_path = args.out.with_suffix(".json")
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"wrote {args.out} ({card['nemo_bytes']} bytes) and {card_path}", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
