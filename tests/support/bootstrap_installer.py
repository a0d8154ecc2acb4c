"""An installer wrapper for the bootstrap tests: marks that it started, waits, then runs the real installer.

    python bootstrap_installer.py --mark DIR [--barrier N] [--sleep S] -- INSTALLER... ARGS...

`--mark` writes DIR/<pid> (how a test finds and kills it); `--barrier N` waits until N wrappers have
marked DIR (so N builders really install at the same time); `--sleep` holds it mid-install.
"""

import argparse
import os
import sys
import time
from pathlib import Path

BARRIER_TIMEOUT_SECONDS = 60.0


def main() -> int:
    """Parses the wrapper's options, waits as told and replaces itself with the real installer.

    Returns:
        3 when the barrier was not reached in time (otherwise it does not return).
    """
    split = sys.argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--mark", type=Path, required=True)
    parser.add_argument("--barrier", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0.0)
    options = parser.parse_args(sys.argv[1:split])
    command = sys.argv[split + 1 :]
    (options.mark / str(os.getpid())).touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_SECONDS
    while len(list(options.mark.iterdir())) < options.barrier:
        if time.monotonic() > deadline:
            print(f"barrier of {options.barrier} installers not reached", file=sys.stderr)
            return 3
        time.sleep(0.02)
    time.sleep(options.sleep)
    os.execvp(command[0], command)
    return None


if __name__ == "__main__":
    sys.exit(main())
