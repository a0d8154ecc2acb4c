"""Local servers and fixtures for the source tests: the job directory, a PUT target that records what the
worker sends, an origin that misbehaves on purpose, a TLS origin with its own CA, and a tiny S3 endpoint
for what moto cannot do. All listen on 127.0.0.1 only.
"""

import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import config
from tests.support.fake_dns import FakeDns
from tests.support.serving import serving
from utils import sources

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")

AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4
SECRET = "S3CR3T-SIGNATURE-0123456789"


# --- what the worker writes, and the job directory it writes into -------------------------------

# A result as the worker uploads it to an output_url.
UPLOAD_BODY = json.dumps({"success": True, "text": "grüße, 12 34"}, ensure_ascii=False).encode()
# The two entry points that judge an output_url; the same bad URL must fail both alike.
OUTPUT_URL_CHECKS = {
    "upload": lambda url: sources.upload(url, UPLOAD_BODY, "application/json"),
    "check_output_url": sources.check_output_url,
}


@pytest.fixture
def job_dir(tmp_path: Path) -> Iterator[Path]:
    """A job directory inside tmp_path; on teardown, asserts nothing was written beside it."""
    directory = tmp_path / "job"
    directory.mkdir()
    yield directory
    assert [entry.name for entry in tmp_path.iterdir()] == ["job"]


def files_in(directory: Path) -> list[Path]:
    """Returns the files in `directory`."""
    return sorted(directory.iterdir())


_SERVER_LOGGERS = ("werkzeug", "moto")


def worker_log(caplog: pytest.LogCaptureFixture) -> str:
    """Returns the log lines of everything but the test servers."""
    return "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith(_SERVER_LOGGERS)
    )


def capture_worker_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Captures the worker's own DEBUG lines and every library's INFO lines."""
    caplog.set_level("INFO")
    caplog.set_level("DEBUG", logger="utils")


# --- a local PUT target -----------------------------------------------------------------------------


@dataclass
class Received:
    """One request as the PUT target saw it (header names lowercased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _PutHandler(BaseHTTPRequestHandler):
    """Answers PUTs by path: /ok, /status/<code>, /redirect, /slow, /stall."""

    protocol_version = "HTTP/1.1"
    server: "PutTarget"

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps the test output quiet."""

    def do_PUT(self) -> None:
        """Records the request, reads the body as the route says, answers."""
        route = urlsplit(self.path).path.strip("/").split("/")[0]
        length = int(self.headers.get("Content-Length", "0"))
        try:
            if route == "stall":
                # Reads nothing: the worker's sends block once the socket buffers are full.
                body = b""
                self.server.release.wait(10)
            elif route == "slow":
                # 256 KiB every 25 ms (about 10 MiB/s), never pausing for long.
                received = bytearray()
                while chunk := self.rfile.read(min(256 * 1024, length - len(received))):
                    received += chunk
                    time.sleep(0.025)
                body = bytes(received)
            elif route == "trickle":
                # 64 KiB every 100 ms: steady, but far too slow for the body.
                while not self.server.release.is_set() and (chunk := self.rfile.read(min(64 * 1024, length))):
                    length -= len(chunk)
                    time.sleep(0.1)
                body = b""
            else:
                body = self.rfile.read(length)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        self.server.received.append(
            Received("PUT", self.path, {name.lower(): value for name, value in self.headers.items()}, body)
        )
        if route == "redirect":
            self._answer(307, {"Location": "/ok"})
        elif route == "status":
            self._answer(int(self.path.rsplit("/", 1)[1].partition("?")[0]))
        else:
            self._answer(200)

    def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Sends an empty response."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


class PutTarget(ThreadingHTTPServer):
    """The PUT target, with what it received; a small receive buffer so that not reading shows."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PutHandler, bind_and_activate=False)
        # Set before listen, so accepted sockets inherit it (and the kernel does not grow it).
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.server_bind()
        self.server_activate()
        self.received: list[Received] = []
        self.release = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stays quiet about clients hanging up (tests abort uploads on purpose)."""

    @property
    def port(self) -> int:
        """The port the target listens on."""
        return self.server_address[1]


@pytest.fixture
def put_target(fake_dns: FakeDns, local_urls: None) -> Iterator[PutTarget]:
    """A PUT target reachable as http://uploads.test:<port>/ with http and loopback admitted."""
    server = PutTarget()
    # A short poll interval: shutdown() waits up to one interval, once per test.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake_dns.names["uploads.test"] = ["127.0.0.1"]
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


# --- a local origin server -----------------------------------------------------------------------


class _OriginHandler(BaseHTTPRequestHandler):
    """Routes of the test origin; each misbehaves in one specific way."""

    protocol_version = "HTTP/1.1"
    server: "OriginServer"

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps the test output quiet."""

    def do_GET(self) -> None:
        """Records the request and answers by path."""
        self.server.requests.append({"path": self.path, "host": self.headers.get("Host")})
        parts = urlsplit(self.path)
        route = getattr(
            self, "route_" + parts.path.strip("/").split("/")[0].replace("-", "_").replace(".", "_"), None
        )
        try:
            if route is None:
                self.send_plain(404, b"no such route")
            else:
                route(parts.path, parse_qs(parts.query))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def send_plain(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Sends a complete response with a correct Content-Length."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_raw(self, head: str, body: bytes = b"") -> None:
        """Writes a hand-made response and closes the connection afterwards."""
        self.wfile.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        self.wfile.flush()
        self.close_connection = True

    def route_audio_wav(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_plain(200, AUDIO, {"Content-Type": "audio/wav"})

    def route_status(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_plain(int(path.rsplit("/", 1)[1]), b"status body")

    def route_redirect(self, path: str, query: dict[str, list[str]]) -> None:
        remaining = int(path.rsplit("/", 1)[1])
        if remaining == 0:
            self.route_audio_wav(path, query)
        else:
            self.send_plain(302, b"", {"Location": f"/redirect/{remaining - 1}"})

    def route_to(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_plain(302, b"", {"Location": query["location"][0]})

    def route_no_location(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_plain(302, b"")

    def route_drip(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_raw("HTTP/1.1 200 OK\nContent-Length: 100\n")
        for _ in range(100):
            time.sleep(0.2)
            self.wfile.write(b"x")
            self.wfile.flush()

    def route_stall(self, path: str, query: dict[str, list[str]]) -> None:
        # One byte at 2.6 s, the next only at 8.6 s: a read that waited its full initial timeout
        # (3 s) instead of the time left would end near 5.6 s, well after a 3 s deadline.
        self.send_raw("HTTP/1.1 200 OK\nContent-Length: 2\n")
        time.sleep(2.6)
        self.wfile.write(b"x")
        self.wfile.flush()
        time.sleep(6)
        self.wfile.write(b"x")

    def route_huge_declared(self, path: str, query: dict[str, list[str]]) -> None:
        # Says a terabyte, then sends nothing for 10 s: refusing must not wait for the body.
        self.send_raw("HTTP/1.1 200 OK\nContent-Length: 1000000000000\n")
        time.sleep(10)

    def route_lying_length(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_raw("HTTP/1.1 200 OK\nContent-Length: 10\n", b"y" * 5000)

    def route_chunked(self, path: str, query: dict[str, list[str]]) -> None:
        chunks = b"".join(b"3e8\r\n" + b"z" * 1000 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
        self.send_raw("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", chunks)

    def route_close_delimited(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_raw("HTTP/1.1 200 OK\nConnection: close\n", b"z" * 5000)

    def route_short_body(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_raw("HTTP/1.1 200 OK\nContent-Length: 100\n", b"z" * 10)

    def route_empty(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_plain(200, b"")


class QuietServer(ThreadingHTTPServer):
    """A threaded test server that stays quiet about clients hanging up (tests abort on purpose)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Reports handler errors other than broken connections."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class OriginServer(QuietServer):
    """The origin, with the requests it received."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        super().__init__((address, 0), _OriginHandler)
        self.requests: list[dict[str, Any]] = []
        self.server_names: list[str | None] = []

    @property
    def port(self) -> int:
        """The port the origin listens on."""
        return self.server_address[1]


@pytest.fixture(scope="module")
def origin_server() -> Iterator[OriginServer]:
    """A plain-http origin on 127.0.0.1 for the module."""
    server = OriginServer()
    with serving(server):
        yield server


@pytest.fixture
def origin(origin_server: OriginServer, fake_dns: FakeDns, local_urls: None) -> OriginServer:
    """The origin, reachable as http://audio.test:<port>/ with http and loopback admitted."""
    origin_server.requests.clear()
    fake_dns.names["audio.test"] = ["127.0.0.1"]
    return origin_server


# --- a local origin with TLS ---------------------------------------------------------------------


def _write_pem(path: Path, data: bytes) -> Path:
    """Writes `data` to `path` and returns the path."""
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a server certificate for the name audio.test, signed by it."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "parakeet test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audio.test")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("audio.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return {
        "ca": _write_pem(directory / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM)),
        "cert": _write_pem(directory / "cert.pem", leaf_cert.public_bytes(serialization.Encoding.PEM)),
        "key": _write_pem(
            directory / "key.pem",
            leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        ),
    }


@pytest.fixture(scope="module")
def tls_origin_server(tls_files: dict[str, Path]) -> Iterator[OriginServer]:
    """The origin behind TLS with the audio.test certificate; records the SNI names it was sent."""
    server = OriginServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    context.sni_callback = lambda _sock, name, _context: server.server_names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield server


@pytest.fixture
def tls_origin(
    tls_origin_server: OriginServer,
    tls_files: dict[str, Path],
    fake_dns: FakeDns,
    monkeypatch: pytest.MonkeyPatch,
) -> OriginServer:
    """The TLS origin as https://audio.test:<port>/, its CA trusted, loopback admitted, http refused."""
    tls_origin_server.requests.clear()
    tls_origin_server.server_names.clear()
    fake_dns.names["audio.test"] = ["127.0.0.1"]
    fake_dns.names["other.test"] = ["127.0.0.1"]
    # OpenSSL's default verify paths (which urllib3 loads) honour SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files["ca"]))
    monkeypatch.setattr(config, "ALLOW_HTTP", False)
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", True)
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", ())
    return tls_origin_server


# --- a tiny S3 endpoint for what moto cannot do ---------------------------------------------------


class _FlakyS3Handler(BaseHTTPRequestHandler):
    """Answers GetObject with 500 for the first `failures` requests, then with a body in `mode`."""

    protocol_version = "HTTP/1.1"
    server: "FlakyS3Server"

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps the test output quiet."""

    def do_GET(self) -> None:
        """Serves /bucket/key (path-style GetObject)."""
        self.server.requests.append(self.path)
        if len(self.server.requests) <= self.server.failures:
            body = (
                b"<Error><Code>InternalError</Code>"
                b"<Message>We encountered an internal error.</Message></Error>"
            )
            self.send_response(500)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        if self.server.mode in ("chunked", "drip"):
            # Five 1000-byte chunks and no Content-Length; "drip" pauses 0.3 s before each.
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(5):
                if self.server.mode == "drip":
                    time.sleep(0.3)
                self.wfile.write(b"3e8\r\n" + b"z" * 1000 + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(AUDIO)))
        self.end_headers()
        if self.server.mode == "stall":
            self.wfile.flush()
            time.sleep(2)
        self.wfile.write(AUDIO)


class FlakyS3Server(QuietServer):
    """The flaky S3 endpoint and what it was asked."""

    def __init__(self, failures: int, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyS3Handler)
        self.failures = failures
        self.mode = mode
        self.requests: list[str] = []


@pytest.fixture
def flaky_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FlakyS3Server]]:
    """Starts a flaky S3 endpoint on demand and points the worker's S3 settings at it."""
    servers: list[FlakyS3Server] = []

    def start(failures: int = 0, mode: str = "object") -> FlakyS3Server:
        server = FlakyS3Server(failures, mode)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        monkeypatch.setattr(config, "S3_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setattr(config, "S3_ACCESS_KEY", "flaky-access")
        monkeypatch.setattr(config, "S3_SECRET_KEY", "flaky-secret")
        sources.s3.reset_clients()
        return server

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    sources.s3.reset_clients()
