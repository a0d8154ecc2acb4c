"""The one logging set-up, called by the entry points only (`handler.py`, `bootstrap.py`); importing any
other module never changes a program's logging. Stdlib only: the bootstrap runs before torch exists."""

import logging

# Their DEBUG lines quote whole requests, presigned URLs included.
QUIET_LIBRARIES = ("urllib3", "botocore", "boto3", "s3transfer")


def configure_logging() -> None:
    """Logs INFO and above to stderr, with the logger's name and the process id on every line."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
    )
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.INFO)
