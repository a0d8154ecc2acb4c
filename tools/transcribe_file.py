"""Transcribes a local audio file through the worker's handler and prints the JSON result.

Usage: `python -m tools.transcribe_file FILE [--timestamps]`. The file travels as base64, exactly as a
client's `audio_base64` would; the exit code is 0 on success and 1 on failure.
"""

import argparse
import base64
import json
import sys
from pathlib import Path

import handler


def main(argv: list[str] | None = None) -> int:
    """Runs one job on a local file.

    Args:
        argv: Command-line arguments (defaults to sys.argv).

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="audio or video file to transcribe")
    parser.add_argument("--timestamps", action="store_true", help="return word and segment timestamps")
    args = parser.parse_args(argv)
    job_input = {
        "audio_base64": base64.b64encode(args.file.read_bytes()).decode("ascii"),
        "timestamps": args.timestamps,
    }
    result = handler.handler({"id": "local", "input": job_input})
    print(json.dumps(result, indent=2))
    return 0 if result["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
