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

# --- Audio -------------------------------------------------------------------------------------
SAMPLE_RATE = 16_000
FFMPEG_BINARY = os.environ.get("FFMPEG_BINARY", "ffmpeg")
FFMPEG_TIMEOUT_SECONDS = _env_float("FFMPEG_TIMEOUT_SECONDS", 300)
# The longest audio a job accepts; longer input is refused, not truncated.
MAX_AUDIO_SECONDS = _env_float("MAX_AUDIO_SECONDS", LOCAL_ATTENTION_MAX_SECONDS)
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

# --- Fetching audio_url ------------------------------------------------------------------------
MAX_DOWNLOAD_BYTES = _env_int("MAX_DOWNLOAD_BYTES", 2 * 1024**3)
DOWNLOAD_TIMEOUT_SECONDS = _env_float("DOWNLOAD_TIMEOUT_SECONDS", 300)
DOWNLOAD_CONNECT_TIMEOUT_SECONDS = _env_float("DOWNLOAD_CONNECT_TIMEOUT_SECONDS", 10)
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
MAX_REDIRECTS = _env_int("MAX_REDIRECTS", 3)
# Plain http and private addresses exist for local testing (the tests' S3 server); off in production.
ALLOW_HTTP = _env_bool("ALLOW_HTTP_URLS", False)
ALLOW_PRIVATE_ADDRESSES = _env_bool("ALLOW_PRIVATE_ADDRESSES", False)
# When non-empty, audio_url hosts must be one of these (exact names or ".suffix" for subdomains).
URL_HOST_ALLOWLIST = _env_list("URL_HOST_ALLOWLIST")

# --- S3 (s3:// URLs, with the worker's own credentials) -----------------------------------------
S3_ACCESS_KEY = os.environ.get("S3_ACCESS_KEY")
S3_SECRET_KEY = os.environ.get("S3_SECRET_KEY")
S3_ENDPOINT = os.environ.get("S3_ENDPOINT")
S3_REGION = os.environ.get("S3_REGION", "us-east-1")
S3_BUCKET = os.environ.get("S3_BUCKET")

# --- Files -------------------------------------------------------------------------------------
# Per-job temporary directories are created under this root and removed when the job ends.
TEMP_ROOT = Path(os.environ.get("PARAKEET_TEMP_DIR", tempfile.gettempdir()))
JOB_DIR_PREFIX = "parakeet-job-"

# --- Volume --------------------------------------------------------------------------------------
VOLUME_ROOT = Path(os.environ.get("RUNPOD_VOLUME_PATH", "/runpod-volume"))
