"""HTTP entry point: OpenAI's transcription API (and the queue's JSON contract) over HTTP.

For RunPod load-balancing endpoints and for self-hosting: `python server.py` listens on `HOST:PORT`
and answers /ping on `PORT_HEALTH` too. The model loads in the background, so /ping answers 204 from
the first second and 200 once the server can transcribe. On SIGTERM the server stops taking requests,
finishes the ones in flight, then exits with status 0 (its temporary directory removed).
"""

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

import config
from utils import fitness
from utils.http import app as http_app
from utils.http import connection
from utils.http.readiness import Readiness
from utils.job import dirs
from utils.job import pipeline as job_pipeline
from utils.logs import configure_logging

log = logging.getLogger("parakeet.server")


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket for uvicorn to serve on (IPv6 when the host is an IPv6 address).

    Args:
        host: The address to listen on.
        port: The port.

    Returns:
        The bound socket.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class GracefulServer(uvicorn.Server):
    """uvicorn's server, except that a graceful stop on SIGTERM or SIGINT ends the process normally.

    uvicorn raises the signal again once it has shut down, so the process dies of it (status 143) and
    its exit handlers, which remove the process's temporary directory, never run.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's signal handling, forgetting the signals it caught once the shutdown is done."""
        with super().capture_signals():
            yield
            self._captured_signals.clear()  # handled: the shutdown it asked for is complete


def start_up() -> None:
    """The server's start-up work, run in the background: fitness checks, then the environment and model.

    Raises:
        UnfitError: A fitness check failed.
        WorkerError: The environment or a model could not be made ready.
    """
    for check in fitness.CHECKS:
        log.info("fitness: %s", check())
    job_pipeline.load_models()


def main() -> None:
    """Starts the server and serves until SIGTERM or SIGINT."""
    configure_logging()
    dirs.remove_stale()
    dirs.use_process_directory()
    state = Readiness()
    app = http_app.create_app(state)
    ports = sorted({config.PORT, config.PORT_HEALTH})
    asgi = app if len(ports) == 1 else http_app.health_port_only(app, config.PORT_HEALTH)
    sockets = [listening_socket(config.HOST, port) for port in ports]
    state.start(start_up)
    log.info("serving on %s port(s) %s", config.HOST, ", ".join(map(str, ports)))
    # No access log: RunPod polls /ping every few seconds, and each job logs its own line.
    server = GracefulServer(connection.server_config(asgi, log_config=None))
    server.run(sockets=sockets)


if __name__ == "__main__":
    main()
