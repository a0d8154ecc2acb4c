"""Which URLs the worker may reach: scheme, host and address rules (SSRF).

The rules apply to every client-supplied URL: `audio_url` (downloads, each redirect included) and
`output_url` (result uploads). Messages start with `errors.FIELD`; `utils.sources` puts the name of
the input field that named the URL there.

A client-supplied URL must never make the worker reach its own network: the cloud metadata service
(169.254.169.254), loopback services, or private ranges. So every address a host name resolves to is
checked, and the downloader connects to exactly the addresses checked here (no second DNS lookup, which
a rebinding DNS server could answer differently).

Address rules (`address_problem`):
- Always refused: unspecified (0.0.0.0/8, ::), link-local (169.254/16 with the metadata service,
  fe80::/10), multicast, reserved (240/4, broadcast, ::/8 and the rest of ipaddress's reserved
  ranges) and every other range the IANA special-purpose registries mark as not globally reachable
  (documentation, benchmarking, Teredo 2001::/32, NAT64 local-use 64:ff9b:1::/48, ...).
- Refused unless `config.ALLOW_PRIVATE_ADDRESSES`: loopback, RFC 1918 private, carrier-grade NAT
  100.64.0.0/10 (`ipaddress` does not call it private in every Python version, so it is listed
  explicitly), IPv6 unique local fc00::/7 and deprecated site-local fec0::/10. The switch exists for
  local test servers; it never opens link-local, so the metadata service stays unreachable.
- IPv6 forms that embed an IPv4 address are judged by that address: IPv4-mapped ::ffff:0:0/96,
  NAT64 64:ff9b::/96 (a DNS64 network maps public hosts there, so it cannot be refused outright) and
  6to4 2002::/16. Deprecated IPv4-compatible ::a.b.c.d lies in the reserved ::/8 and is refused.
"""

import contextlib
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urlsplit

import config
from utils.errors import FIELD, FetchError, UrlRejectedError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_RFC1918 = tuple(ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

# Refusal reasons that ALLOW_PRIVATE_ADDRESSES lifts.
_PRIVATE_REASONS = frozenset({"loopback", "private", "carrier-grade NAT", "unique local", "site-local"})

# Characters outside printable ASCII are never part of a URL we send (whitespace, controls).
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f]")
# A host whose last label is a number is an IPv4 address in WHATWG parsing ("127.1", "0x7f.1",
# "2130706433"); only the canonical dotted-quad form is accepted so that no parser reads it otherwise.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
# Printable ASCII stays as is (including "%" of existing escapes); anything else is percent-encoded.
_REQUEST_TARGET_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HttpTarget:
    """An http(s) URL taken apart for a pinned request.

    Attributes:
        scheme: "https" or "http".
        host: The normalized host name (lowercase, ASCII/IDNA, no trailing dot) or IP literal.
        port: The TCP port.
        request_target: Path and query, exactly as sent on the request line.
        host_header: The Host header value (host, with the port when it is not the default).
        display: scheme://host[:port]/path without query or fragment, safe for logs and messages.
    """

    scheme: str
    host: str
    port: int
    request_target: str
    host_header: str
    display: str


def url_scheme(url: str, allowed: tuple[str, ...]) -> str:
    """Returns the lowercase scheme of `url`, one of `allowed`.

    Args:
        url: The client's URL.
        allowed: The schemes the caller speaks.

    Returns:
        The scheme, e.g. "https" or "s3".

    Raises:
        UrlRejectedError: The URL cannot be parsed, has no scheme, or one outside `allowed`.
    """
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        raise UrlRejectedError(f"{FIELD} is not a valid URL") from None
    if not scheme:
        raise UrlRejectedError(f"{FIELD} has no scheme; use https:// or s3://")
    if scheme not in allowed:
        raise UrlRejectedError(f"{FIELD} scheme {scheme!r} is not allowed; use https:// or s3://")
    return scheme


def parse_http_url(url: str) -> HttpTarget:
    """Checks an http(s) URL's form and scheme and takes it apart (no DNS, no connection).

    Args:
        url: The URL of the first request or of a redirect target.

    Returns:
        The parts a pinned request needs.

    Raises:
        UrlRejectedError: Scheme other than https (or http when `config.ALLOW_HTTP`), whitespace or
            control characters, userinfo in the URL, a missing or malformed host or port.
    """
    if _UNSAFE_URL_CHARS.search(url):
        raise UrlRejectedError(f"{FIELD} contains whitespace or control characters")
    scheme = url_scheme(url, ("https", "http") if config.ALLOW_HTTP else ("https",))
    parts = urlsplit(url)
    if "@" in parts.netloc:
        # Credentials in URLs are a classic parser-confusion trick (https://good@evil/); presigned
        # URLs never need them.
        raise UrlRejectedError(f"{FIELD} must not contain credentials (user@host)")
    host = _normalize_host(parts)
    port = _port_of(parts, scheme)
    request_target = quote(parts.path or "/", safe=_REQUEST_TARGET_SAFE)
    if parts.query:
        request_target += "?" + quote(parts.query, safe=_REQUEST_TARGET_SAFE)
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if port == _DEFAULT_PORTS[scheme] else f"{shown_host}:{port}"
    return HttpTarget(
        scheme=scheme,
        host=host,
        port=port,
        request_target=request_target,
        host_header=host_header,
        display=f"{scheme}://{host_header}{parts.path}",
    )


def _normalize_host(parts: SplitResult) -> str:
    """Returns the lowercase ASCII host of `parts`, refusing empty, malformed or numeric-trick hosts."""
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRejectedError(f"{FIELD} has no host")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlRejectedError(f"{FIELD} host {host!r} is not a valid host name") from None
    if not _HOST_NAME.fullmatch(ascii_host):
        raise UrlRejectedError(f"{FIELD} host {host!r} is not a valid host name")
    if _NUMERIC_LABEL.fullmatch(ascii_host.rpartition(".")[2]):
        raise UrlRejectedError(f"{FIELD} host {host!r} is not a valid host name or IPv4 address")
    return ascii_host


def _port_of(parts: SplitResult, scheme: str) -> int:
    """Returns the URL's port or the scheme's default, refusing malformed ports."""
    try:
        port = parts.port
    except ValueError:
        raise UrlRejectedError(f"{FIELD} has an invalid port") from None
    if port == 0:
        raise UrlRejectedError(f"{FIELD} has an invalid port")
    return port if port is not None else _DEFAULT_PORTS[scheme]


def host_allowed(host: str) -> bool:
    """Tells whether `host` passes `config.URL_HOST_ALLOWLIST` (every host passes an empty list).

    Entries are exact names ("cdn.example.com") or ".suffix" entries (".example.com"), which match
    subdomains only; list the bare domain as well to admit it. IP literals match exactly.

    Args:
        host: A normalized host (see `parse_http_url`).

    Returns:
        True when the host may be fetched.
    """
    if not config.URL_HOST_ALLOWLIST:
        return True
    for raw_entry in config.URL_HOST_ALLOWLIST:
        entry = raw_entry.strip().lower().rstrip(".").strip("[]")
        if entry.startswith("."):
            if host.endswith(entry) and len(host) > len(entry):
                return True
            continue
        with contextlib.suppress(ValueError):
            entry = str(ipaddress.ip_address(entry))
        if host == entry:
            return True
    return False


def address_problem(address: IPAddress, allow_private: bool) -> str | None:
    """Returns why `address` may not be fetched from, or None when it may.

    Args:
        address: A resolved IPv4 or IPv6 address.
        allow_private: Whether loopback and private ranges are admitted (`config.ALLOW_PRIVATE_ADDRESSES`).

    Returns:
        A short reason ("loopback", "link-local", ...), or None for an allowed address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = address_problem(embedded, allow_private)
            return None if reason is None else f"{reason}, embedded in IPv6"
    reason = _address_class(address)
    if reason is None or (allow_private and reason in _PRIVATE_REASONS):
        return None
    return reason


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Returns the IPv4 address carried by an IPv4-mapped, NAT64 or 6to4 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def _address_class(address: IPAddress) -> str | None:
    """Returns the special class of a (non-embedding) address, or None for a global unicast one."""
    # Order matters: the specific classes come before the catch-all "not globally reachable".
    if address.is_unspecified or address in _THIS_NETWORK:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in _CGNAT:
        return "carrier-grade NAT"
    if address in _UNIQUE_LOCAL:
        return "unique local"
    if address in _SITE_LOCAL:
        return "site-local"
    if address.is_reserved or address in _NAT64_LOCAL_USE:
        return "reserved"
    if any(address in net for net in _RFC1918):
        return "private"
    if address.is_private or not address.is_global:
        return "special-purpose"
    return None


def resolve_allowed_addresses(target: HttpTarget) -> list[IPAddress]:
    """Resolves the target's host and checks the host and every address it resolves to.

    Args:
        target: A parsed URL (see `parse_http_url`).

    Returns:
        The addresses to connect to, in resolver order; all of them passed the rules.

    Raises:
        UrlRejectedError: The host is not in the allowlist, or any address is forbidden (one bad
            answer refuses the host: a client must not be able to race a private answer in).
        FetchError: The host name does not resolve.
    """
    if not host_allowed(target.host):
        raise UrlRejectedError(f"{FIELD} host {target.host!r} is not in this worker's host allowlist")
    addresses = _resolve(target.host, target.port)
    allow_private = config.ALLOW_PRIVATE_ADDRESSES
    for address in addresses:
        reason = address_problem(address, allow_private)
        if reason is not None:
            # The address goes to the server log only: telling the client what an internal name
            # resolves to would turn the worker into a reconnaissance tool.
            logger.warning("refused %s: %s resolves to %s (%s)", target.display, target.host, address, reason)
            raise UrlRejectedError(
                f"{FIELD} host {target.host!r} resolves to a non-public address ({reason}); "
                "only public addresses may be fetched"
            )
    return addresses


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Returns every A/AAAA address of `host` (an IP literal resolves to itself), without duplicates."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchError(f"{FIELD}: could not resolve host {host!r}") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonname, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # An IPv6 sockaddr's host may carry a "%zone" suffix; the zone does not change the class.
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"{FIELD}: could not resolve host {host!r}")
    return addresses
