"""Every constant of the worker and every environment variable it reads, read once at import.

Modules do `import config` and read `config.NAME`, so a test patches one place.
"""

import os
import tempfile
from pathlib import Path


def _env_bool(name: str, default: bool) -> bool:
    """Reads a boolean environment variable ("1", "true", "yes", "on" are true)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    """Reads an integer environment variable, falling back to `default` when unset."""
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else int(raw)


def _env_float(name: str, default: float) -> float:
    """Reads a float environment variable, falling back to `default` when unset."""
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else float(raw)


def _env_list(name: str) -> tuple[str, ...]:
    """Reads a comma-separated environment variable into a tuple of non-empty items."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


REPO_ROOT = Path(__file__).resolve().parent

# --- Model -------------------------------------------------------------------------------------
# A Hugging Face hub name (from_pretrained) or a path to a .nemo file (restore_from).
PARAKEET_MODEL = os.environ.get("PARAKEET_MODEL", "nvidia/parakeet-tdt-0.6b-v3")
# "auto" picks CUDA when torch sees a GPU, else CPU.
DEVICE = os.environ.get("PARAKEET_DEVICE", "auto")
BUNDLED_TEST_MODEL = REPO_ROOT / "tests" / "fixtures" / "parakeet-tdt-digits.nemo"

# --- Attention by duration (DESIGN.md "Long audio") ----------------------------------------------
# Full attention is quadratic in length; 24 min fits an 80 GB GPU. Local attention is linear.
FULL_ATTENTION_MAX_SECONDS = _env_float("FULL_ATTENTION_MAX_SECONDS", 24 * 60)
LOCAL_ATTENTION_MAX_SECONDS = _env_float("LOCAL_ATTENTION_MAX_SECONDS", 3 * 3600)
FULL_ATTENTION_MODEL = "rel_pos"
FULL_ATTENTION_CONTEXT = [-1, -1]
LOCAL_ATTENTION_MODEL = "rel_pos_local_attn"
LOCAL_ATTENTION_CONTEXT = [256, 256]
# 1 = split the subsampling convolutions only when the input needs it (long audio).
LOCAL_SUBSAMPLING_CHUNKING_FACTOR = 1
# Full attention's memory grows with the square of the encoder frames (80 ms each). Calibrated so that
# 24 min (18,000 frames) fills an 80 GB card: about 240 bytes per frame squared. On a GPU, full
# attention is used only when this estimate fits the free memory.
FULL_ATTENTION_BYTES_PER_FRAME_SQUARED = _env_float("FULL_ATTENTION_BYTES_PER_FRAME_SQUARED", 240)
GPU_MEMORY_SAFETY_FRACTION = 0.9
# Audio longer than local attention handles is cut into windows of this length that overlap.
WINDOW_SECONDS = _env_float("WINDOW_SECONDS", LOCAL_ATTENTION_MAX_SECONDS)
WINDOW_OVERLAP_SECONDS = _env_float("WINDOW_OVERLAP_SECONDS", 20)
# After running out of GPU memory with local attention, an item is retried in windows this long.
FALLBACK_WINDOW_SECONDS = _env_float("FALLBACK_WINDOW_SECONDS", 600)
# One model call takes at most this many items and this much audio in total (padding costs memory).
BATCH_SIZE = _env_int("BATCH_SIZE", 16)
BATCH_MAX_AUDIO_SECONDS = _env_float("BATCH_MAX_AUDIO_SECONDS", 1800)

# --- Audio -------------------------------------------------------------------------------------
SAMPLE_RATE = 16_000
FFMPEG_BINARY = os.environ.get("FFMPEG_BINARY", "ffmpeg")
FFMPEG_TIMEOUT_SECONDS = _env_float("FFMPEG_TIMEOUT_SECONDS", 300)
# The longest audio a job accepts (beyond local attention's limit it is transcribed in windows);
# longer input is refused, not truncated.
MAX_AUDIO_SECONDS = _env_float("MAX_AUDIO_SECONDS", 12 * 3600)
# ffmpeg opens these demuxers only: audio and common audio-in-video containers, never playlists
# (hls, concat, sdp) that could point it at local files or URLs.
FFMPEG_DEMUXER_ALLOWLIST = (
    "aac,ac3,aiff,amr,amrnb,amrwb,ape,asf,au,avi,caf,dts,eac3,flac,flv,gsm,matroska,mlp,mov,mp3,"
    "mpeg,mpegts,ogg,sln,truehd,tta,voc,w64,wav,wv,xwma"
)
# ffmpeg's last stderr lines kept for diagnosis; a corrupt file can print an error per packet.
FFMPEG_STDERR_TAIL_LINES = 20

# --- Input limits ------------------------------------------------------------------------------
# RunPod caps /runsync bodies at 20 MB; base64 text of a larger file cannot arrive anyway.
MAX_BASE64_CHARS = _env_int("MAX_BASE64_CHARS", 20 * 1024 * 1024)
MAX_URL_CHARS = 8192
MAX_BATCH_ITEMS = _env_int("MAX_BATCH_ITEMS", 64)
MAX_ITEM_ID_CHARS = 256
# Batch items are downloaded and converted this many at a time.
FETCH_CONCURRENCY = _env_int("FETCH_CONCURRENCY", 4)
# A whole job (downloads, conversion, transcription) ends within this many seconds, with a job_timeout
# error if need be (utils/deadline.py). Keep it a few minutes under the endpoint's execution timeout
# (here: a one-hour endpoint, as long audio needs): a job RunPod kills reports nothing useful, while one
# that stops itself says why, removes its files and leaves the model ready for the next job. The margin
# covers a model call in progress, which cannot be interrupted. With RunPod's default 600 s, use ~540.
JOB_TIMEOUT_SECONDS = _env_float("JOB_TIMEOUT_SECONDS", 3300)

# --- Results -------------------------------------------------------------------------------------
# Progress updates go to the job queue's webhook, which exists only inside RunPod's worker loop (not
# in local tests or the SDK's local API, where the SDK would log a failed post for each update).
SEND_PROGRESS_UPDATES = bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"))
# RunPod refuses results over 10 MB from /run (20 MB from /runsync); a larger result goes to the
# client's output_url, or fails with a message that says how to ask for that.
MAX_RESULT_BYTES = _env_int("MAX_RESULT_BYTES", 9 * 1024 * 1024)

# --- Fetching audio_url ------------------------------------------------------------------------
MAX_DOWNLOAD_BYTES = _env_int("MAX_DOWNLOAD_BYTES", 2 * 1024**3)
DOWNLOAD_TIMEOUT_SECONDS = _env_float("DOWNLOAD_TIMEOUT_SECONDS", 300)
DOWNLOAD_CONNECT_TIMEOUT_SECONDS = _env_float("DOWNLOAD_CONNECT_TIMEOUT_SECONDS", 10)
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
MAX_REDIRECTS = _env_int("MAX_REDIRECTS", 3)
# Plain http and private addresses exist for local testing (the tests' S3 server); off in production.
# ALLOW_PRIVATE_ADDRESSES admits loopback, RFC 1918, 100.64/10 and fc00::/7, never link-local (the
# cloud metadata service at 169.254.169.254), multicast or reserved ranges (utils/url_policy.py).
ALLOW_HTTP = _env_bool("ALLOW_HTTP_URLS", False)
ALLOW_PRIVATE_ADDRESSES = _env_bool("ALLOW_PRIVATE_ADDRESSES", False)
# When non-empty, audio_url hosts must be one of these (exact names or ".suffix" for subdomains).
URL_HOST_ALLOWLIST = _env_list("URL_HOST_ALLOWLIST")

# --- S3 (s3:// URLs, with the worker's own credentials) -----------------------------------------
S3_ACCESS_KEY = os.environ.get("S3_ACCESS_KEY")
S3_SECRET_KEY = os.environ.get("S3_SECRET_KEY")
S3_ENDPOINT = os.environ.get("S3_ENDPOINT")
S3_REGION = os.environ.get("S3_REGION", "us-east-1")
# Default bucket for audio_url "s3:///key" (no bucket named).
S3_BUCKET = os.environ.get("S3_BUCKET")
# Longest wait for one S3 response or socket read (boto3 read_timeout); the whole transfer is still
# bounded by DOWNLOAD_TIMEOUT_SECONDS, checked between chunks.
S3_READ_TIMEOUT_SECONDS = _env_float("S3_READ_TIMEOUT_SECONDS", 60)

# --- Files -------------------------------------------------------------------------------------
# Per-job temporary directories are created under this root and removed when the job ends.
TEMP_ROOT = Path(os.environ.get("PARAKEET_TEMP_DIR", tempfile.gettempdir()))
JOB_DIR_PREFIX = "parakeet-job-"

# --- Volume --------------------------------------------------------------------------------------
VOLUME_ROOT = Path(os.environ.get("RUNPOD_VOLUME_PATH", "/runpod-volume"))

# --- Subtitles ---------------------------------------------------------------------------------
# Common streaming-service limits (e.g. Netflix's timed-text guide): 42 characters a line, two lines,
# at most 7 s on screen per cue.
SUBTITLE_MAX_LINE_CHARS = _env_int("SUBTITLE_MAX_LINE_CHARS", 42)
SUBTITLE_MAX_LINES = _env_int("SUBTITLE_MAX_LINES", 2)
SUBTITLE_MAX_CUE_SECONDS = _env_float("SUBTITLE_MAX_CUE_SECONDS", 7.0)
# A silence this long ends a cue: ordinary gaps between words are well under 0.3 s, a longer one
# marks a new thought or speaker.
SUBTITLE_PAUSE_SECONDS = _env_float("SUBTITLE_PAUSE_SECONDS", 0.8)

# --- Client (client.py) --------------------------------------------------------------------------
# The command-line client runs on the user's machine; the worker ignores this section.
CLIENT_ENDPOINT_ID = os.environ.get("RUNPOD_ENDPOINT_ID")
CLIENT_API_KEY = os.environ.get("RUNPOD_API_KEY")
CLIENT_BASE_URL_TEMPLATE = "https://api.runpod.ai/v2/{endpoint_id}"
CLIENT_USER_AGENT = "parakeet-worker-client/0.1"
CLIENT_CONCURRENCY = 4
# Per item, from submission to a terminal state; an item still queued or running then is cancelled.
CLIENT_TIMEOUT_SECONDS = 3600.0
CLIENT_POLL_INTERVAL_SECONDS = 2.0
# One HTTP request. The SDK's local API runs the job inside the /status request, so this is generous.
CLIENT_REQUEST_TIMEOUT_SECONDS = 120.0
CLIENT_CANCEL_TIMEOUT_SECONDS = 10.0
# Error messages are cut to this length so each input's summary stays one line.
CLIENT_MAX_MESSAGE_CHARS = 300
# Transient failures (connection errors and these statuses) are retried with exponential backoff.
CLIENT_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CLIENT_MAX_RETRIES = 5
CLIENT_RETRY_BACKOFF_SECONDS = 1.0
CLIENT_RETRY_BACKOFF_MAX_SECONDS = 30.0
# RunPod refuses /run bodies over 10 MB; a larger file must be uploaded and sent as a URL.
CLIENT_MAX_RUN_BODY_BYTES = 10 * 1024 * 1024
# Inputs starting with these are sent as audio_url (the worker decides which schemes it accepts).
CLIENT_URL_PREFIXES = ("https://", "http://", "s3://")
# Job states after which /status will not change any more.
CLIENT_TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
# Output fields saved as files of their own (<name>.srt, <name>.vtt) when the worker returns them.
CLIENT_SUBTITLE_FIELDS = ("srt", "vtt")

# --- Bootstrap -----------------------------------------------------------------------------------
# torch and NeMo live in a virtual environment on the network volume, built on first need
# (bootstrap.py; DESIGN.md "The volume environment").
BOOTSTRAP_ROOT = Path(os.environ.get("BOOTSTRAP_ROOT", str(VOLUME_ROOT / "Parakeet")))
# The pinned volume requirements; their bytes (index URLs included) are part of the environment id,
# and so is the container's own requirements file.
BOOTSTRAP_REQUIREMENTS = Path(
    os.environ.get("BOOTSTRAP_REQUIREMENTS", str(REPO_ROOT / "requirements-volume.txt"))
)
CONTAINER_REQUIREMENTS = REPO_ROOT / "requirements.txt"
# Further requirement specifiers for the volume environment, comma-separated.
BOOTSTRAP_EXTRA_PACKAGES = _env_list("BOOTSTRAP_EXTRA_PACKAGES")
# "auto" installs with uv when the container has it (much faster), else pip; "uv" or "pip" forces one.
BOOTSTRAP_INSTALLER = os.environ.get("BOOTSTRAP_INSTALLER", "auto").strip().lower()
# "auto": the verification requires CUDA when the machine shows an NVIDIA GPU; "1"/"0" force it.
BOOTSTRAP_REQUIRE_CUDA = os.environ.get("BOOTSTRAP_REQUIRE_CUDA", "auto").strip().lower()
# A worker waits this long for another worker's build before building itself (correct either way).
BOOTSTRAP_LOCK_TIMEOUT_SECONDS = _env_float("BOOTSTRAP_LOCK_TIMEOUT_SECONDS", 20 * 60)
# An unfinished build whose heartbeat is older than this is dead: `--gc` and each new build remove it.
# Keep it well above the heartbeat interval and any clock skew between machines.
BOOTSTRAP_GC_AGE_SECONDS = _env_float("BOOTSTRAP_GC_AGE_SECONDS", 3600)
BOOTSTRAP_HEARTBEAT_SECONDS = _env_float("BOOTSTRAP_HEARTBEAT_SECONDS", 30)
BOOTSTRAP_INSTALL_TIMEOUT_SECONDS = _env_float("BOOTSTRAP_INSTALL_TIMEOUT_SECONDS", 45 * 60)
# Importing NeMo from a cold network volume can take minutes.
BOOTSTRAP_VERIFY_TIMEOUT_SECONDS = _env_float("BOOTSTRAP_VERIFY_TIMEOUT_SECONDS", 10 * 60)
BOOTSTRAP_MODEL_TIMEOUT_SECONDS = _env_float("BOOTSTRAP_MODEL_TIMEOUT_SECONDS", 60 * 60)
# The Hugging Face cache (model weights), on the volume so that every worker shares one download.
HF_HOME = Path(os.environ.get("HF_HOME", str(BOOTSTRAP_ROOT / "hf")))
