"""Every constant of the worker and every environment variable it reads, read and checked once at import.

Modules do `import config` and read `config.NAME` at call time, so a test patches one place. A bad
value stops the worker at start with a `ConfigError` that names the variable and what it allows.
"""

import math
import os
import tempfile
from pathlib import Path

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """An environment variable holds a value the worker cannot use."""


def _raw(name: str) -> str | None:
    """Returns the variable's value without surrounding whitespace; None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def _str(name: str, default: str) -> str:
    """Reads a string variable."""
    return _raw(name) or default


def _optional_str(name: str) -> str | None:
    """Reads a string variable that may be absent."""
    return _raw(name)


def _number(name: str, default: float, kind: type, minimum: float | None) -> float:
    """Reads a number of `kind` (int or float), at least `minimum` when one is given."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name} must be {noun}, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _int(name: str, default: int, minimum: int | None = 1) -> int:
    """Reads a whole-number variable (at least 1 unless told otherwise)."""
    return int(_number(name, default, int, minimum))


def _float(name: str, default: float, minimum: float | None = 0.0) -> float:
    """Reads a number variable (not negative unless told otherwise)."""
    return float(_number(name, default, float, minimum))


def _bool(name: str, default: bool) -> bool:
    """Reads a boolean variable: 1/true/yes/on or 0/false/no/off, in any letter case."""
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be one of {', '.join(_TRUE + _FALSE)}, got {raw!r}")


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """Reads a variable that must be one of `choices` (compared in lower case)."""
    value = _str(name, default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _auto_bool(name: str) -> bool | None:
    """Reads "auto" (None) or a boolean."""
    raw = _raw(name)
    return None if raw is None or raw.lower() == "auto" else _bool(name, False)


def _list(name: str) -> tuple[str, ...]:
    """Reads a comma-separated variable into a tuple of non-empty items."""
    return tuple(item.strip() for item in (_raw(name) or "").split(",") if item.strip())


def _path(name: str, default: Path) -> Path:
    """Reads a filesystem path variable."""
    raw = _raw(name)
    return Path(raw) if raw is not None else default


REPO_ROOT = Path(__file__).resolve().parent

# --- Model -------------------------------------------------------------------------------------
# A Hugging Face hub name (from_pretrained) or a path to a .nemo file (restore_from).
PARAKEET_MODEL = _str("PARAKEET_MODEL", "nvidia/parakeet-tdt-0.6b-v3")
# "auto" picks CUDA when torch sees a GPU, else CPU.
DEVICE = _choice("PARAKEET_DEVICE", "auto", ("auto", "cuda", "cpu"))
BUNDLED_TEST_MODEL = REPO_ROOT / "tests" / "fixtures" / "parakeet-tdt-digits.nemo"

# --- Speakers ----------------------------------------------------------------------------------
# The diarizer (NeMo Sortformer): a hub name or a .nemo path, loaded like the ASR model, on the first job
# that asks for `diarize` unless PRELOAD_DIARIZER loads it at start.
DIARIZER_MODEL = _str("DIARIZER_MODEL", "nvidia/diar_streaming_sortformer_4spk-v2.1")
PRELOAD_DIARIZER = _bool("PRELOAD_DIARIZER", False)
BUNDLED_TEST_DIARIZER = REPO_ROOT / "tests" / "fixtures" / "sortformer-digits.nemo"
# Sortformer's output has four speaker slots; a job's max_speakers is 1 to this.
MAX_SPEAKERS = 4
# A speaker is active in an output frame whose probability is at least this.
SPEAKER_ACTIVITY_THRESHOLD = _float("SPEAKER_ACTIVITY_THRESHOLD", 0.5)
# Audio longer than this is diarized in the model's streaming mode (bounded memory).
DIARIZER_STREAMING_ABOVE_SECONDS = _float("DIARIZER_STREAMING_ABOVE_SECONDS", 90.0)
# channels: "separate" transcribes at most this many channels of the first audio stream.
MAX_SEPARATE_CHANNELS = 8

# --- Attention by duration -------------------------------------------------------
# Full attention is quadratic in length; 24 min fits an 80 GB GPU. Local attention is linear.
FULL_ATTENTION_MAX_SECONDS = _float("FULL_ATTENTION_MAX_SECONDS", 24 * 60)
LOCAL_ATTENTION_MAX_SECONDS = _float("LOCAL_ATTENTION_MAX_SECONDS", 3 * 3600)
FULL_ATTENTION_MODEL = "rel_pos"
FULL_ATTENTION_CONTEXT = [-1, -1]
LOCAL_ATTENTION_MODEL = "rel_pos_local_attn"
LOCAL_ATTENTION_CONTEXT = [256, 256]
# 1 = split the subsampling convolutions only when the input needs it (long audio).
LOCAL_SUBSAMPLING_CHUNKING_FACTOR = 1
# Full attention's memory grows with the square of the encoder frames (80 ms each). Calibrated so that
# 24 min (18,000 frames) fills an 80 GB card: about 240 bytes per frame squared. On a GPU, full
# attention is used only when this estimate fits the free memory.
FULL_ATTENTION_BYTES_PER_FRAME_SQUARED = _float("FULL_ATTENTION_BYTES_PER_FRAME_SQUARED", 240)
GPU_MEMORY_SAFETY_FRACTION = 0.9
# Audio longer than local attention handles is cut into windows of this length that overlap.
WINDOW_SECONDS = _float("WINDOW_SECONDS", LOCAL_ATTENTION_MAX_SECONDS)
WINDOW_OVERLAP_SECONDS = _float("WINDOW_OVERLAP_SECONDS", 20)
# After running out of GPU memory with local attention, an item is retried in windows this long.
FALLBACK_WINDOW_SECONDS = _float("FALLBACK_WINDOW_SECONDS", 600)
# One model call takes at most this many items and this much audio in total (padding costs memory).
BATCH_SIZE = _int("BATCH_SIZE", 16)
BATCH_MAX_AUDIO_SECONDS = _float("BATCH_MAX_AUDIO_SECONDS", 1800)

# --- Throughput ---------------------------------------------------------------------------------
# Jobs the worker runs at once (RunPod's concurrency_modifier); 1 keeps one job at a time. Their items
# share model calls: the scheduler waits up to BATCH_WAIT_MS after the first item for more to arrive.
MAX_CONCURRENCY = _int("MAX_CONCURRENCY", 8)
BATCH_WAIT_MS = _float("BATCH_WAIT_MS", 10)
# Decoded audio held by all running jobs together, in seconds (float32 at 16 kHz: 230 MB per hour). A
# job waits for room before it decodes; a job whose audio alone is over this is refused.
MAX_INFLIGHT_AUDIO_SECONDS = _float("MAX_INFLIGHT_AUDIO_SECONDS", 12 * 3600, minimum=1)
# A small file skips the length probe (a process spawn, as costly as the decode of a short clip): it is
# reserved for and decoded up to a length guessed from its size at 500 bytes per second (4 kbit/s,
# below the bitrate of any speech codec the worker opens), and probed only if its audio goes on
# longer. Files whose guess is over the maximum are probed first.
DECODE_GUESS_BYTES_PER_SECOND = 500
DECODE_GUESS_MIN_SECONDS = 10.0
DECODE_GUESS_MAX_SECONDS = 600.0
# "auto": bf16 on a CUDA GPU that supports it (the preprocessor stays fp32), fp32 on the CPU.
PRECISION = _choice("PARAKEET_PRECISION", "auto", ("auto", "bf16", "fp32"))

# A transcript with at least this many words at more than this many a second is no speech (the fastest
# speakers stay under 8 words a second): the item fails as unreliable_transcript.
MAX_WORDS_PER_SECOND = _float("MAX_WORDS_PER_SECOND", 15)
IMPLAUSIBLE_MIN_WORDS = 20

# NeMo pads shorter input to this length itself (on both sides); the worker pads on the right first.
MODEL_MIN_INPUT_SECONDS = 1.0

# --- Audio -------------------------------------------------------------------------------------
SAMPLE_RATE = 16_000
FFMPEG_BINARY = _str("FFMPEG_BINARY", "ffmpeg")
FFPROBE_BINARY = _str("FFPROBE_BINARY", "ffprobe")
FFMPEG_TIMEOUT_SECONDS = _float("FFMPEG_TIMEOUT_SECONDS", 300)
# The longest audio a job accepts (beyond local attention's limit it is transcribed in windows);
# longer input is refused, not truncated.
MAX_AUDIO_SECONDS = _float("MAX_AUDIO_SECONDS", 12 * 3600)
# The most audio one job (a batch's items together) may carry; refused before decoding when headers
# tell, else as soon as decoding does.
MAX_JOB_AUDIO_SECONDS = _float("MAX_JOB_AUDIO_SECONDS", 12 * 3600, minimum=1)
# ffmpeg opens these demuxers only: audio and common audio-in-video containers, never playlists
# (hls, concat, sdp) that could point it at local files or URLs.
FFMPEG_DEMUXER_ALLOWLIST = (
    "aac,ac3,aiff,amr,amrnb,amrwb,ape,asf,au,avi,caf,dts,eac3,flac,flv,gsm,matroska,mlp,mov,mp3,"
    "mpeg,mpegts,ogg,sln,truehd,tta,voc,w64,wav,wv,xwma"
)
# Up to this many channels, the mono mix is made in Python with polarity alignment (utils/audio.py);
# files with more are mixed by ffmpeg with equal weights.
MIX_MAX_CHANNELS = 8
# A channel correlated below this with the loudest one is flipped before mixing (-1: exactly inverted).
MIX_FLIP_CORRELATION = -0.5
# Input below 16 kHz is resampled in frames of at most 1/this of a second, which bounds ffmpeg's memory.
UPSAMPLE_FRAMES_PER_SECOND = 8
# ffmpeg's last stderr lines kept for diagnosis; a corrupt file can print an error per packet.
FFMPEG_STDERR_TAIL_LINES = 20

# --- Input limits ------------------------------------------------------------------------------
# RunPod caps /runsync bodies at 20 MB; base64 text of a larger file cannot arrive anyway.
MAX_BASE64_CHARS = _int("MAX_BASE64_CHARS", 20 * 1024 * 1024)
MAX_URL_CHARS = 8192
MAX_BATCH_ITEMS = _int("MAX_BATCH_ITEMS", 64)
MAX_ITEM_ID_CHARS = 256
# Error messages name at most this many unknown fields, each cut to this length (the rest are counted).
MAX_ECHOED_NAMES = 5
MAX_ECHOED_NAME_CHARS = 64
# Batch items are downloaded and converted this many at a time.
FETCH_CONCURRENCY = _int("FETCH_CONCURRENCY", 4)
# A whole job (downloads, conversion, transcription) ends within this many seconds, with a job_timeout
# error if need be (utils/deadline.py). Keep it a few minutes under the endpoint's execution timeout
# (here: a one-hour endpoint, as long audio needs): a job RunPod kills reports nothing useful, while one
# that stops itself says why, removes its files and leaves the model ready for the next job. The margin
# covers a model call in progress, which cannot be interrupted. With RunPod's default 600 s, use ~540.
JOB_TIMEOUT_SECONDS = _float("JOB_TIMEOUT_SECONDS", 3300)

# --- Results -------------------------------------------------------------------------------------
# Progress updates go to the job queue's webhook, which exists only inside RunPod's worker loop (not
# in local tests or the SDK's local API, where the SDK would log a failed post for each update).
SEND_PROGRESS_UPDATES = bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"))
# RunPod refuses results over 10 MB from /run (20 MB from /runsync); a larger result goes to the
# client's output_url, or fails with a message that says how to ask for that.
MAX_RESULT_BYTES = _int("MAX_RESULT_BYTES", 9 * 1024 * 1024)

# --- Fetching audio_url ------------------------------------------------------------------------
MAX_DOWNLOAD_BYTES = _int("MAX_DOWNLOAD_BYTES", 2 * 1024**3)
DOWNLOAD_TIMEOUT_SECONDS = _float("DOWNLOAD_TIMEOUT_SECONDS", 300)
DOWNLOAD_CONNECT_TIMEOUT_SECONDS = _float("DOWNLOAD_CONNECT_TIMEOUT_SECONDS", 10)
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
MAX_REDIRECTS = _int("MAX_REDIRECTS", 3, minimum=0)
# Plain http and private addresses exist for local testing (the tests' S3 server); off in production.
# ALLOW_PRIVATE_ADDRESSES admits loopback, RFC 1918, 100.64/10 and fc00::/7, never link-local (the
# cloud metadata service at 169.254.169.254), multicast or reserved ranges (utils/sources/url_policy.py).
ALLOW_HTTP = _bool("ALLOW_HTTP_URLS", False)
ALLOW_PRIVATE_ADDRESSES = _bool("ALLOW_PRIVATE_ADDRESSES", False)
# When non-empty, audio_url hosts must be one of these (exact names or ".suffix" for subdomains).
URL_HOST_ALLOWLIST = _list("URL_HOST_ALLOWLIST")

# --- S3 (s3:// URLs, with the worker's own credentials) -----------------------------------------
S3_ACCESS_KEY = _optional_str("S3_ACCESS_KEY")
S3_SECRET_KEY = _optional_str("S3_SECRET_KEY")
S3_ENDPOINT = _optional_str("S3_ENDPOINT")
S3_REGION = _str("S3_REGION", "us-east-1")
# Default bucket for audio_url "s3:///key" (no bucket named).
S3_BUCKET = _optional_str("S3_BUCKET")
# Longest wait for one S3 response or socket read (boto3 read_timeout); the whole transfer is still
# bounded by DOWNLOAD_TIMEOUT_SECONDS, checked between chunks.
S3_READ_TIMEOUT_SECONDS = _float("S3_READ_TIMEOUT_SECONDS", 60)

# --- Files -------------------------------------------------------------------------------------
# Per-job temporary directories are created under this root and removed when the job ends.
TEMP_ROOT = _path("PARAKEET_TEMP_DIR", Path(tempfile.gettempdir()))
JOB_DIR_PREFIX = "parakeet-job-"

# --- Volume --------------------------------------------------------------------------------------
VOLUME_ROOT = _path("RUNPOD_VOLUME_PATH", Path("/runpod-volume"))
# RunPod's host-side model cache, a Hugging Face hub cache; looked in first for a hub model.
RUNPOD_MODEL_CACHE_DIR = _path("RUNPOD_MODEL_CACHE_DIR", Path("/runpod-volume/huggingface-cache"))

# --- Subtitles ---------------------------------------------------------------------------------
# Common streaming-service limits (e.g. Netflix's timed-text guide): 42 characters a line, two lines,
# at most 7 s on screen per cue.
SUBTITLE_MAX_LINE_CHARS = _int("SUBTITLE_MAX_LINE_CHARS", 42)
SUBTITLE_MAX_LINES = _int("SUBTITLE_MAX_LINES", 2)
SUBTITLE_MAX_CUE_SECONDS = _float("SUBTITLE_MAX_CUE_SECONDS", 7.0)
# Hotwords: at most this many phrases of at most this many characters; the boost per matched token.
MAX_HOTWORDS = 100
MAX_HOTWORD_CHARS = 64
HOTWORD_WEIGHT = 2.0
HOTWORD_WEIGHT_BOUNDS = (0.1, 10.0)
# What a job's subtitle_options may ask for (inclusive).
SUBTITLE_LINE_CHARS_BOUNDS = (10, 200)
SUBTITLE_LINES_BOUNDS = (1, 5)
SUBTITLE_CUE_SECONDS_BOUNDS = (0.5, 60.0)
# A silence this long ends a cue: ordinary gaps between words are well under 0.3 s, a longer one
# marks a new thought or speaker.
SUBTITLE_PAUSE_SECONDS = _float("SUBTITLE_PAUSE_SECONDS", 0.8)

# --- Bootstrap -----------------------------------------------------------------------------------
# torch and NeMo live in a virtual environment on the network volume, built on first need
# (bootstrap.py, utils/volume/).
BOOTSTRAP_ROOT = _path("BOOTSTRAP_ROOT", VOLUME_ROOT / "Parakeet")
# The pinned volume requirements; their bytes (index URLs included) are part of the environment id,
# and so is the container's own requirements file.
BOOTSTRAP_REQUIREMENTS = _path("BOOTSTRAP_REQUIREMENTS", REPO_ROOT / "requirements-volume.txt")
CONTAINER_REQUIREMENTS = REPO_ROOT / "requirements.txt"
# Further requirement specifiers for the volume environment, comma-separated.
BOOTSTRAP_EXTRA_PACKAGES = _list("BOOTSTRAP_EXTRA_PACKAGES")
# "auto" installs with uv when the container has it (much faster), else pip; "uv" or "pip" forces one.
BOOTSTRAP_INSTALLER = _choice("BOOTSTRAP_INSTALLER", "auto", ("auto", "uv", "pip"))
# "auto": the verification requires CUDA when the machine shows an NVIDIA GPU; a boolean forces it.
BOOTSTRAP_REQUIRE_CUDA = _auto_bool("BOOTSTRAP_REQUIRE_CUDA")
# A worker waits this long for another worker's build before building itself (correct either way).
BOOTSTRAP_LOCK_TIMEOUT_SECONDS = _float("BOOTSTRAP_LOCK_TIMEOUT_SECONDS", 20 * 60)
# An unfinished build whose heartbeat is older than this is dead: `--gc` and each new build remove it.
# Keep it well above the heartbeat interval and any clock skew between machines.
BOOTSTRAP_GC_AGE_SECONDS = _float("BOOTSTRAP_GC_AGE_SECONDS", 3600)
BOOTSTRAP_HEARTBEAT_SECONDS = _float("BOOTSTRAP_HEARTBEAT_SECONDS", 30)
# How often waits and long steps report progress (log line and progress callback).
BOOTSTRAP_REPORT_EVERY_SECONDS = 20.0
BOOTSTRAP_INSTALL_TIMEOUT_SECONDS = _float("BOOTSTRAP_INSTALL_TIMEOUT_SECONDS", 45 * 60)
# Importing NeMo from a cold network volume can take minutes.
BOOTSTRAP_VERIFY_TIMEOUT_SECONDS = _float("BOOTSTRAP_VERIFY_TIMEOUT_SECONDS", 10 * 60)
BOOTSTRAP_MODEL_TIMEOUT_SECONDS = _float("BOOTSTRAP_MODEL_TIMEOUT_SECONDS", 60 * 60)
# The Hugging Face cache (model weights), on the volume so that every worker shares one download.
HF_HOME = _path("HF_HOME", BOOTSTRAP_ROOT / "hf")
