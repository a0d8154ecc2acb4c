"""Name resolution replaced by a table, for tests of address rules: no test may reach a real resolver.

Registered in tests/conftest.py, so any test can ask for `fake_dns` and install answers with
`fake_dns.names["host.test"] = ["93.184.215.14"]`.
"""

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class FakeDns:
    """Name → addresses table that replaces getaddrinfo; records every name looked up.

    A name in `rebind` answers from `names` once, then from `rebind` (a DNS-rebinding attacker).
    """

    names: dict[str, list[str]] = field(default_factory=dict)
    rebind: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """Replaces name resolution: installed names only, IP literals as themselves, no real DNS."""
    table = FakeDns()
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.partition("%")[0])
        except ValueError:
            pass
        else:
            return real_getaddrinfo(host, port, *args, **kwargs)
        table.lookups.append(name)
        if name not in table.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = []
        for address in table.names[name]:
            if ":" in address:
                answers.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0)))
            else:
                answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port))))
        if name in table.rebind:
            table.names[name] = table.rebind.pop(name)
        return answers

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    return table
