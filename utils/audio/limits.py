"""What a stream's headers may claim before anything is decoded (pure; the decoder helper and the
ffmpeg path both ask it).

A header can claim a sample rate or a length that no recording has: a 4 kB WAV declaring 1 Hz holds
2,000 s of samples once upsampled, a small upload that buys a large amount of work. Such a file is
refused from its headers alone.
"""

import config


def refusal(seconds: float | None, sample_rate: int | None, size_bytes: int) -> str | None:
    """Why a stream is refused before decoding, or None when its headers are plausible.

    Args:
        seconds: The length its headers declare (None: unknown).
        sample_rate: Its sample rate in Hz (None: unknown).
        size_bytes: The file's size.

    Returns:
        A one-line message for the client, or None.
    """
    if sample_rate is not None and sample_rate < config.MIN_SAMPLE_RATE:
        return (
            f"the audio's sample rate is {sample_rate} Hz; the lowest accepted is "
            f"{config.MIN_SAMPLE_RATE} Hz (MIN_SAMPLE_RATE)"
        )
    floor = config.MIN_AUDIO_BYTES_PER_SECOND
    if seconds is not None and floor > 0 and seconds * floor > size_bytes:
        return (
            f"the file declares {seconds:.0f} s of audio in {size_bytes} bytes, fewer than "
            f"{floor:g} bytes a second (MIN_AUDIO_BYTES_PER_SECOND): no real recording is that small"
        )
    return None
