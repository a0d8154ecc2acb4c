"""The worker's exceptions. Each carries the stable `error_type` code that clients see.

Modules raise these; only `handler.py` turns them into `{"success": false, "error", "error_type"}`.
A message must be one line a client can act on: it names the field and what was wrong, and never
holds a secret (a presigned query string, a credential) or a server path.
"""

# A message about an input field starts with this placeholder; the code that knows which field it
# was (`utils.sources`) puts the name there with `WorkerError.named`, so the steps below need not know.
FIELD = "{field}"


class WorkerError(Exception):
    """Base class of every error a client may see; its message is shown to the client."""

    error_type = "internal"

    def named(self, field: str) -> "WorkerError":
        """Puts `field` in place of a leading `FIELD` placeholder of the message.

        Only the leading placeholder is replaced: the rest of a message may quote the client's text.

        Args:
            field: The input field the message is about, e.g. "audio_url".

        Returns:
            This error, with its message completed.
        """
        message = str(self)
        if message.startswith(FIELD):
            self.args = (field + message[len(FIELD) :],)
        return self


class InternalError(WorkerError):
    """An unexpected exception (a bug), already logged with its traceback; the client sees a fixed line."""

    error_type = "internal"

    def __init__(self) -> None:
        super().__init__("internal error while transcribing; the worker logged the details")


class InvalidInputError(WorkerError):
    """The job input breaks the input contract (missing, doubled, unknown or mistyped fields)."""

    error_type = "invalid_input"


class PayloadTooLargeError(WorkerError):
    """Inline audio (base64) is larger than the configured cap."""

    error_type = "payload_too_large"


class UrlRejectedError(WorkerError):
    """An audio_url is refused before fetching: scheme, host or address not allowed."""

    error_type = "url_rejected"


class FetchError(WorkerError):
    """The audio could not be fetched (network failure, server error)."""

    error_type = "fetch_failed"


class SourceNotFoundError(FetchError):
    """The audio URL or S3 object does not exist (HTTP 404, NoSuchKey, NoSuchBucket)."""

    error_type = "not_found"


class SourceAccessDeniedError(FetchError):
    """The server refused access (HTTP 401/403, expired presigned URL, missing credentials)."""

    error_type = "access_denied"


class FetchTimeoutError(FetchError):
    """The download did not finish within its deadline."""

    error_type = "fetch_timeout"


class DownloadTooLargeError(FetchError):
    """The download is larger than the configured byte cap."""

    error_type = "download_too_large"


class AudioDecodeError(WorkerError):
    """ffmpeg could not read the file as audio (corrupt, truncated, not a media file)."""

    error_type = "invalid_audio"


class NoAudioStreamError(AudioDecodeError):
    """The file is a readable media file with no audio stream (a video without sound)."""

    error_type = "no_audio_stream"


class EmptyAudioError(AudioDecodeError):
    """The input holds no bytes or decodes to zero samples."""

    error_type = "empty_audio"


class AudioTimeoutError(AudioDecodeError):
    """ffmpeg did not finish converting within its time limit."""

    error_type = "decode_timeout"


class AudioTooLongError(WorkerError):
    """The decoded audio is longer than the configured maximum duration."""

    error_type = "audio_too_long"


class ModelLoadError(WorkerError):
    """The model could not be loaded (bad PARAKEET_MODEL, missing file, hub unreachable)."""

    error_type = "model_load_failed"


class GpuOutOfMemoryError(WorkerError):
    """The audio did not fit the GPU even in the smallest windows; the worker itself is fine."""

    error_type = "out_of_memory"


class GpuFailureError(WorkerError):
    """An unrecoverable CUDA error: the worker must be replaced (`refresh_worker`)."""

    error_type = "gpu_failure"


class ResultTooLargeError(WorkerError):
    """The result is over RunPod's response limit and the client gave no output_url."""

    error_type = "result_too_large"


class BootstrapError(WorkerError):
    """The heavy environment (torch, NeMo) on the volume could not be built or verified."""

    error_type = "bootstrap_failed"


class JobTimeoutError(WorkerError):
    """The job as a whole ran past `config.JOB_TIMEOUT_SECONDS` (see `utils.job.deadline`)."""

    error_type = "job_timeout"


class JobCancelledError(WorkerError):
    """The job was cancelled (RunPod's /cancel or its execution timeout); nobody waits for the answer."""

    error_type = "cancelled"


class UnreliableTranscriptError(WorkerError):
    """The model's output for an item is not speech (a physically impossible word rate)."""

    error_type = "unreliable_transcript"


class TooManyChannelsError(AudioDecodeError):
    """`channels: "separate"` on audio with more channels than the worker transcribes separately."""

    error_type = "too_many_channels"


class DiarizationError(WorkerError):
    """The diarizer failed on an item's audio (other than by running out of memory)."""

    error_type = "diarization_failed"


class WorkerBusyError(WorkerError):
    """The worker is full (jobs at once, or decoded audio held) and the caller asked not to wait.

    Only the HTTP server raises it: with no queue in front of it, a full worker answers 503 after at
    most a short wait in line rather than hold the connection without bound.
    """

    error_type = "busy"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        """Makes the error.

        Args:
            message: The one-line message.
            retry_after: Seconds the client had best wait before it retries, when known.
        """
        super().__init__(message)
        self.retry_after = retry_after


class UnauthorizedError(WorkerError):
    """The HTTP request's bearer token is missing or is not the server's `API_KEY`."""

    error_type = "unauthorized"


class UnknownRouteError(WorkerError):
    """The HTTP request names a path or method the server does not serve."""

    error_type = "unknown_route"


class UploadTimeoutError(WorkerError):
    """An HTTP request's headers or body stopped arriving, or came slower than the server allows."""

    error_type = "upload_timeout"


class HeadersTooLargeError(WorkerError):
    """An HTTP request's line and headers are larger than `MAX_HEADER_BYTES`, or more than `MAX_HEADERS`."""

    error_type = "headers_too_large"
