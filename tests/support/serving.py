"""Running a test server on a background thread for the length of a block."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer
from typing import TypeVar

ServerT = TypeVar("ServerT", bound=BaseServer)


@contextmanager
def serving(server: ServerT) -> Iterator[ServerT]:
    """Serves `server` on a daemon thread until the block ends, then shuts it down and closes it.

    Args:
        server: A socketserver-style server, already bound.

    Yields:
        The same server, running.
    """
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
