"""What `numbers: "digits"` costs: CPU milliseconds per minute of transcript, text alone (no model).

    .venv/bin/python bench/bench_numbers.py [--minutes 10] [--seconds 2] [--gpu-rtfx 3000]

Transcripts of `--minutes` at 150 words a minute (an ordinary speaking rate) are built from plain
sentences with number phrases mixed in at three densities: none, typical (a number phrase every 40
words: amounts, a year, a phone number) and dense (one every 8 words). For English, German and French,
each is converted as an item is: words, segments and text (`utils.text.number_transcripts.with_digits`),
and as text alone (`utils.text.numbers.text_to_digits`), repeated for `--seconds`; the mean per call
is reported per minute of transcript, in CPU time.

The budget is 1 % of the transcription time on a GPU worker. That time is the audio's length over the
model's real-time factor on the GPU (`--gpu-rtfx`, default 3000: batched Parakeet-TDT-0.6B on a
data-centre GPU, the fastest case and so the smallest budget, 0.2 ms a minute); each figure's
`share_of_gpu_time` is its cost over that time. Run on a quiet machine: on a busy one every figure is
inflated.

Prints one JSON object.
"""

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.asr.records import Timestamps, Transcript, Word, segments_of
from utils.text import number_transcripts, numbers

WORDS_PER_MINUTE = 150
SECONDS_PER_WORD = 60 / WORDS_PER_MINUTE
PLAIN = {
    "en": "so we went over the plan again this morning and nobody really knew what to do next. after a "
    "while we called the office, but the line was busy and we left it for later.",
    "de": "also sind wir den Plan heute Morgen noch einmal durchgegangen und keiner wusste so recht, was "
    "als Nächstes zu tun war. nach einer Weile haben wir im Büro angerufen, aber es war besetzt.",
    "fr": "alors nous avons revu le plan ce matin et personne ne savait vraiment quoi faire ensuite. au "
    "bout d'un moment nous avons appelé le bureau, mais la ligne était occupée.",
}
NUMBERS = {
    "en": [
        "twenty five dollars",
        "in nineteen ninety nine",
        "seven three nine two zero five",
        "three point five million",
    ],
    "de": ["siebenundzwanzig Euro", "drei Komma fünf Millionen", "zwei null fünf eins", "hundertzwölf Leute"],
    "fr": ["vingt-cinq euros", "trois virgule cinq millions", "deux zéro cinq un", "cent douze personnes"],
}
DENSITIES = {"none": 0, "typical": 40, "dense": 8}


def transcript(language: str, minutes: float, every: int) -> Transcript:
    """A transcript of `minutes` with a number phrase after every `every` plain words (0: none)."""
    plain, phrases = PLAIN[language].split(), NUMBERS[language]
    tokens: list[str] = []
    count = 0
    while len(tokens) < minutes * WORDS_PER_MINUTE:
        for word in plain:
            tokens.append(word)
            count += 1
            if every and count % every == 0:
                tokens += phrases[(count // every) % len(phrases)].split()
    tokens = tokens[: int(minutes * WORDS_PER_MINUTE)]
    words = [
        Word(token, round(i * SECONDS_PER_WORD, 3), round((i + 0.8) * SECONDS_PER_WORD, 3), 0.9)
        for i, token in enumerate(tokens)
    ]
    stamps = Timestamps(word=words, segment=segments_of(words))
    return Transcript(text=" ".join(tokens), attention="full", timestamps=stamps, language=language)


def per_minute(call: Any, minutes: float, seconds: float) -> float:
    """Mean CPU milliseconds of `call()` per minute of transcript, after one warm-up call (the thread's
    CPU time, which other processes on a shared machine inflate less than the wall clock)."""
    call()
    calls, started, cpu = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - started < seconds:
        call()
        calls += 1
    return (time.thread_time() - cpu) / calls * 1000 / minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="transcript length")
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each figure")
    parser.add_argument("--gpu-rtfx", type=float, default=3000.0, help="the GPU's real-time factor")
    args = parser.parse_args()
    gpu_ms_per_minute = 60_000 / args.gpu_rtfx
    figures: dict[str, Any] = {}
    timing = (args.minutes, args.seconds)
    for language in PLAIN:
        for density, every in DENSITIES.items():
            item = transcript(language, args.minutes, every)
            converted = number_transcripts.with_digits(item, language)
            words = per_minute(functools.partial(number_transcripts.with_digits, item, language), *timing)
            text = per_minute(functools.partial(numbers.text_to_digits, item.text, language), *timing)
            figures[f"{language}/{density}"] = {
                "words_changed": len(item.timestamps.word or []) - len(converted.timestamps.word or []),
                "ms_per_minute_words_segments_text": round(words, 4),
                "ms_per_minute_text_alone": round(text, 4),
                "share_of_gpu_time": round(words / gpu_ms_per_minute, 4),
            }
    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "words_per_minute": WORDS_PER_MINUTE,
                "gpu_rtfx": args.gpu_rtfx,
                "gpu_ms_per_minute": round(gpu_ms_per_minute, 3),
                "figures": figures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
