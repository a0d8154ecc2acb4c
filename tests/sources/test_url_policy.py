"""Address, host and scheme rules for audio_url (utils/sources/url_policy.py).

Name resolution is patched (`socket.getaddrinfo`); nothing here opens a connection, and the
`loopback_only` fixture would fail any test that tried.
"""

import ipaddress
import socket
from collections.abc import Callable

import pytest

import config
from utils.errors import FetchError, UrlRejectedError
from utils.sources import url_policy

pytestmark = pytest.mark.usefixtures("loopback_only")


def _answers(*addresses: str) -> list[tuple]:
    """Builds getaddrinfo answers for `addresses` (IPv4 and IPv6 sockaddr shapes)."""
    answers = []
    for address in addresses:
        if ":" in address:
            answers.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, 443, 0, 0)))
        else:
            answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443)))
    return answers


@pytest.fixture
def resolve_to(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """Makes every name resolve to the given addresses; returns the list of names looked up."""
    looked_up: list[str] = []

    def install(*addresses: str) -> list[str]:
        def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
            looked_up.append(host)
            return _answers(*addresses)

        monkeypatch.setattr(url_policy.socket, "getaddrinfo", fake_getaddrinfo)
        return looked_up

    return install


@pytest.fixture(autouse=True)
def production_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starts every test from the production defaults."""
    monkeypatch.setattr(config, "ALLOW_HTTP", False)
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", False)
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", ())


def _check(url: str) -> list[url_policy.IPAddress]:
    """Parses `url` and resolves its host through the policy; returns the allowed addresses."""
    return url_policy.resolve_allowed_addresses(url_policy.parse_http_url(url))


def _ips(*addresses: str) -> list[url_policy.IPAddress]:
    """Returns `addresses` as ipaddress objects (so that equal addresses compare equal)."""
    return [ipaddress.ip_address(address) for address in addresses]


# (address, reason when refused in production, allowed with ALLOW_PRIVATE_ADDRESSES)
ADDRESS_TABLE = [
    ("127.0.0.1", "loopback", True),
    ("127.255.255.254", "loopback", True),
    ("::1", "loopback", True),
    ("10.1.2.3", "private", True),
    ("172.16.0.1", "private", True),
    ("172.31.255.255", "private", True),
    ("192.168.1.1", "private", True),
    ("100.64.0.1", "carrier-grade NAT", True),
    ("100.127.255.254", "carrier-grade NAT", True),
    ("fc00::1", "unique local", True),
    ("fd12:3456::1", "unique local", True),
    ("fec0::1", "site-local", True),
    ("169.254.169.254", "link-local", False),
    ("169.254.0.1", "link-local", False),
    ("fe80::1", "link-local", False),
    ("224.0.0.1", "multicast", False),
    ("239.255.255.250", "multicast", False),
    ("ff02::1", "multicast", False),
    ("240.0.0.1", "reserved", False),
    ("255.255.255.255", "reserved", False),
    ("0.0.0.0", "unspecified", False),
    ("0.1.2.3", "unspecified", False),
    ("::", "unspecified", False),
    ("::ffff:127.0.0.1", "loopback, embedded in IPv6", True),
    ("::ffff:10.0.0.1", "private, embedded in IPv6", True),
    ("::ffff:169.254.169.254", "link-local, embedded in IPv6", False),
    ("64:ff9b::a9fe:a9fe", "link-local, embedded in IPv6", False),
    ("64:ff9b::7f00:1", "loopback, embedded in IPv6", True),
    ("2002:a9fe:a9fe::1", "link-local, embedded in IPv6", False),
    ("2002:c0a8:101::1", "private, embedded in IPv6", True),
    ("::127.0.0.1", "reserved", False),
    ("64:ff9b:1::1", "reserved", False),
    ("192.0.2.1", "special-purpose", False),
    ("198.18.0.1", "special-purpose", False),
    ("2001:db8::1", "special-purpose", False),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "special-purpose", False),
]


@pytest.mark.parametrize(("address", "reason", "allowed_with_private"), ADDRESS_TABLE)
def test_non_public_address_is_refused(
    resolve_to: Callable[..., list[str]], address: str, reason: str, allowed_with_private: bool
) -> None:
    resolve_to(address)
    with pytest.raises(UrlRejectedError) as caught:
        _check("https://audio.example.com/a.wav")
    assert f"({reason})" in str(caught.value)
    assert "audio.example.com" in str(caught.value)
    # The resolved address is an internal detail: it is logged, not told to the client.
    assert address not in str(caught.value)


@pytest.mark.parametrize(("address", "reason", "allowed_with_private"), ADDRESS_TABLE)
def test_allow_private_admits_private_ranges_only(
    monkeypatch: pytest.MonkeyPatch,
    resolve_to: Callable[..., list[str]],
    address: str,
    reason: str,
    allowed_with_private: bool,
) -> None:
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", True)
    resolve_to(address)
    if allowed_with_private:
        assert _check("https://audio.example.com/a.wav") == _ips(address)
    else:
        with pytest.raises(UrlRejectedError, match="non-public address"):
            _check("https://audio.example.com/a.wav")


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "8.8.8.8", "2606:2800::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_address_is_allowed(resolve_to: Callable[..., list[str]], address: str) -> None:
    resolve_to(address)
    assert _check("https://audio.example.com/a.wav") == _ips(address)


def test_every_answer_is_checked_and_one_private_answer_refuses_the_host(
    resolve_to: Callable[..., list[str]],
) -> None:
    resolve_to("93.184.215.14", "2606:2800::1", "10.0.0.7")
    with pytest.raises(UrlRejectedError, match=r"\(private\)"):
        _check("https://audio.example.com/a.wav")


def test_all_public_answers_are_returned_once_in_order(resolve_to: Callable[..., list[str]]) -> None:
    resolve_to("93.184.215.14", "2606:2800::1", "93.184.215.14")
    assert _check("https://audio.example.com/a.wav") == _ips("93.184.215.14", "2606:2800::1")


def test_dns_failure_is_a_fetch_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_getaddrinfo(*args: object, **kwargs: object) -> list[tuple]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(url_policy.socket, "getaddrinfo", failing_getaddrinfo)
    with pytest.raises(FetchError, match="could not resolve host 'nowhere.example.com'") as caught:
        _check("https://nowhere.example.com/a.wav")
    assert type(caught.value) is FetchError


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.wav",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/a.wav",
        "https://[::ffff:169.254.169.254]/",
        "https://10.0.0.1:8443/a.wav",
    ],
)
def test_literal_ip_hosts_are_checked_without_dns(resolve_to: Callable[..., list[str]], url: str) -> None:
    looked_up = resolve_to("93.184.215.14")
    with pytest.raises(UrlRejectedError, match="non-public address"):
        _check(url)
    assert looked_up == []


def test_public_literal_ip_is_allowed_without_dns(resolve_to: Callable[..., list[str]]) -> None:
    looked_up = resolve_to("10.0.0.1")
    assert _check("https://93.184.215.14/a.wav") == _ips("93.184.215.14")
    assert looked_up == []


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0x7f.0.0.1/",
        "https://0177.0.0.1/",
        "https://audio.example.123/",
    ],
)
def test_numeric_host_forms_are_refused_before_dns(resolve_to: Callable[..., list[str]], url: str) -> None:
    looked_up = resolve_to("93.184.215.14")
    with pytest.raises(UrlRejectedError, match="not a valid host name or IPv4 address"):
        _check(url)
    assert looked_up == []


@pytest.mark.parametrize(
    ("allowlist", "host", "allowed"),
    [
        (("audio.example.com",), "audio.example.com", True),
        (("audio.example.com",), "AUDIO.example.com.", True),
        (("audio.example.com",), "evil.example.com", False),
        (("audio.example.com",), "audio.example.com.evil.net", False),
        ((".example.com",), "a.b.example.com", True),
        ((".example.com",), "example.com", False),
        ((".example.com",), "badexample.com", False),
        ((".example.com", "example.com"), "example.com", True),
        (("93.184.215.14",), "93.184.215.14", True),
        (("2606:2800:0::1",), "[2606:2800::1]", True),
    ],
)
def test_host_allowlist(
    monkeypatch: pytest.MonkeyPatch,
    resolve_to: Callable[..., list[str]],
    allowlist: tuple[str, ...],
    host: str,
    allowed: bool,
) -> None:
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", allowlist)
    looked_up = resolve_to("93.184.215.14")
    url = f"https://{host}/a.wav"
    if allowed:
        assert _check(url)
    else:
        with pytest.raises(UrlRejectedError, match="not in this worker's host allowlist"):
            _check(url)
        # A host outside the allowlist is refused before its name is even looked up.
        assert looked_up == []


def test_allowlisted_host_still_needs_public_addresses(
    monkeypatch: pytest.MonkeyPatch, resolve_to: Callable[..., list[str]]
) -> None:
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", ("audio.example.com",))
    resolve_to("169.254.169.254")
    with pytest.raises(UrlRejectedError, match=r"\(link-local\)"):
        _check("https://audio.example.com/a.wav")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://audio.example.com/a.wav", "scheme 'http' is not allowed"),
        ("ftp://audio.example.com/a.wav", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("audio.example.com/a.wav", "has no scheme"),
        ("https://user:secret@audio.example.com/a.wav", "must not contain credentials"),
        ("https://audio.example.com@evil.example.net/a.wav", "must not contain credentials"),
        ("https:///a.wav", "has no host"),
        ("https://audio.example.com:99999/a.wav", "invalid port"),
        ("https://audio.example.com:0/a.wav", "invalid port"),
        ("https://audio.example.com:https/a.wav", "invalid port"),
        ("https://audio example.com/a.wav", "whitespace or control characters"),
        ("https://audio.example.com/a.wav\r\nX-Injected: 1", "whitespace or control characters"),
        ("https://bad!host.example.com/a.wav", "not a valid host name"),
        ("https://[::1/a.wav", "not a valid URL"),
    ],
)
def test_malformed_or_forbidden_url_is_rejected(url: str, message: str) -> None:
    with pytest.raises(UrlRejectedError, match=message):
        url_policy.parse_http_url(url)


def test_http_is_accepted_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "ALLOW_HTTP", True)
    assert url_policy.parse_http_url("http://audio.example.com/a.wav").port == 80


@pytest.mark.parametrize(
    ("url", "host", "port", "request_target", "host_header", "display"),
    [
        (
            "HTTPS://Audio.Example.COM./dir/a.wav?X-Amz-Signature=abc#frag",
            "audio.example.com",
            443,
            "/dir/a.wav?X-Amz-Signature=abc",
            "audio.example.com",
            "https://audio.example.com/dir/a.wav",
        ),
        (
            "https://audio.example.com:8443",
            "audio.example.com",
            8443,
            "/",
            "audio.example.com:8443",
            "https://audio.example.com:8443",
        ),
        (
            "https://[2606:2800::1]/a.wav",
            "2606:2800::1",
            443,
            "/a.wav",
            "[2606:2800::1]",
            "https://[2606:2800::1]/a.wav",
        ),
        (
            "https://bücher.example/hör spiel.wav".replace(" ", "%20"),
            "xn--bcher-kva.example",
            443,
            "/h%C3%B6r%20spiel.wav",
            "xn--bcher-kva.example",
            "https://xn--bcher-kva.example/hör%20spiel.wav",
        ),
    ],
)
def test_url_is_taken_apart_for_a_pinned_request(
    url: str, host: str, port: int, request_target: str, host_header: str, display: str
) -> None:
    target = url_policy.parse_http_url(url)
    assert (target.host, target.port, target.request_target, target.host_header, target.display) == (
        host,
        port,
        request_target,
        host_header,
        display,
    )


@pytest.mark.parametrize(
    ("url", "scheme"), [("S3://b/k", "s3"), ("data:audio/wav;base64,AAAA", "data"), ("gopher://h/", "gopher")]
)
def test_url_scheme_is_lowercased(url: str, scheme: str) -> None:
    assert url_policy.url_scheme(url, ("s3", "data", "gopher")) == scheme
