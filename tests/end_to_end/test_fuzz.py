"""Property-based fuzzing of the input contract through the real handler.

Any JSON value as `job["input"]` (and inputs built around the real field names, with random values)
gives a contract-shaped, plain-JSON result: never an exception, never a multi-line or unknown error.

Nothing here reaches the network: every host name fails to resolve, the address rules are at their
production defaults (https only, public addresses only), s3:// has no credentials, and the
`loopback_only` fixture fails any connection to a non-loopback address.
"""

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import config
import handler
from utils import errors

# `internal` is left out on purpose: it means an unexpected exception, which input must never cause.
KNOWN_ERROR_TYPES = frozenset(
    cls.error_type
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.WorkerError) and cls.error_type != "internal"
)
FAILURE_KEYS = {"success", "error", "error_type"}

field_names = st.text(max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(field_names, children, max_size=4),
    max_leaves=12,
)

# Host names start with a letter, so that no generated host is a public IP literal (which, unlike a
# name, needs no lookup); the listed ones are all refused by the URL or address rules.
hosts = st.sampled_from(
    ["127.0.0.1", "169.254.169.254", "[::1]", "10.0.0.7", "[fe80::1]", "0x7f.1", "2130706433", "user@host"]
) | st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,8}){0,2}", fullmatch=True)
urls = st.builds(
    "{}://{}/{}".format,
    st.sampled_from(["https", "HTTPS", "http", "s3", "ftp", "file", "gopher", "data", ""]),
    hosts,
    st.text(max_size=20),
) | st.text(max_size=40)
# Short random bytes, so the ones that are valid base64 reach ffmpeg (and, rarely, the model) quickly.
base64_values = (
    st.binary(max_size=64).map(lambda data: base64.b64encode(data).decode())
    | st.binary(max_size=64).map(lambda data: "data:audio/wav;base64," + base64.b64encode(data).decode())
    | st.text(max_size=40)
)


def names_of(allowed: list[str]) -> st.SearchStrategy[str]:
    """One of the allowed names, or a near miss."""
    return st.sampled_from([*allowed, "", "phoneme", "mp4", allowed[0].upper()])


timestamp_values = st.booleans() | st.lists(names_of(["word", "segment", "char"]), max_size=4) | json_values
format_values = (
    names_of(["json", "text", "srt", "vtt"]) | st.lists(names_of(["json", "text", "srt", "vtt"]), max_size=4)
) | json_values
ids = st.text(max_size=300) | json_values
extra_fields = st.dictionaries(field_names, json_values, min_size=1, max_size=2)


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    """One input object from several (a later part wins a shared key)."""
    return {key: value for part in parts for key, value in part.items()}


def one_source(batch_items: st.SearchStrategy[dict[str, Any]] | None) -> st.SearchStrategy[dict[str, Any]]:
    """Exactly one audio source, as the contract wants (a batch only where `batch_items` is given)."""
    sources = [
        st.fixed_dictionaries({"audio_base64": base64_values}),
        st.fixed_dictionaries({"audio_url": urls}),
    ]
    if batch_items is not None:
        sources.append(st.fixed_dictionaries({"audios": st.lists(batch_items, min_size=1, max_size=3)}))
    return st.one_of(sources)


batch_items = st.builds(merged, one_source(None), st.fixed_dictionaries({}, optional={"id": ids}))
any_field = {
    "audio_base64": base64_values,
    "audio_url": urls,
    "audios": st.lists(batch_items, max_size=3) | json_values,
    "timestamps": timestamp_values,
    "output_format": format_values,
    "output_url": urls,
    "id": ids,
}
# Inputs that follow the contract's shape and go as deep as the values allow ...
near_valid_inputs = st.builds(
    merged,
    one_source(batch_items),
    st.fixed_dictionaries(
        {}, optional={name: any_field[name] for name in ("timestamps", "output_format", "output_url")}
    ),
)
# ... and any mix of the real field names, with or without unknown fields.
field_mixes = st.builds(merged, extra_fields | st.just({}), st.fixed_dictionaries({}, optional=any_field))
jobs = st.just({"id": "fuzz"}) | st.builds(
    lambda value: {"id": "fuzz", "input": value}, json_values | near_valid_inputs | field_mixes
)


def assert_contract(result: Any, where: str) -> None:
    """One result (of a job or of a batch item) is the success or the failure contract."""
    assert isinstance(result, dict), f"{where}: {result!r}"
    assert isinstance(result.get("success"), bool), f"{where}: {result!r}"
    if result["success"]:
        batch = "results" in result
        assert isinstance(result["results"], list) if batch else isinstance(result["text"], str), result
        return
    assert set(result) - {"id"} == FAILURE_KEYS, f"{where}: {result!r}"
    error = result["error"]
    assert isinstance(error, str), f"{where}: {result!r}"
    assert error, f"{where}: {result!r}"
    assert len(error.splitlines()) == 1, f"{where}: multi-line error {error!r}"
    assert result["error_type"] in KNOWN_ERROR_TYPES, f"{where}: {result!r}"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, loopback_only: None, tmp_path: Path) -> Path:
    """Production URL rules, no DNS, no S3 credentials; returns the job temp root."""

    def no_resolution(host: Any, *args: Any, **kwargs: Any) -> list:
        # Name resolution itself is traffic (a DNS query), so no name resolves during the fuzz.
        raise socket.gaierror(socket.EAI_NONAME, "name resolution is disabled in the fuzz test")

    monkeypatch.setattr(socket, "getaddrinfo", no_resolution)
    monkeypatch.setattr(config, "ALLOW_HTTP", False)
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", False)
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", ())
    monkeypatch.setattr(config, "S3_ACCESS_KEY", None)
    monkeypatch.setattr(config, "S3_SECRET_KEY", None)
    monkeypatch.setattr(config, "TEMP_ROOT", tmp_path)
    return tmp_path


def test_any_input_gets_a_contract_shaped_plain_json_result(no_network: Path) -> None:
    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(job=jobs)
    def check(job: dict[str, Any]) -> None:
        result = handler.handler(job)
        assert json.loads(json.dumps(result, allow_nan=False)) == result
        assert_contract(result, "job")
        for index, item in enumerate(result.get("results", [])):
            assert_contract(item, f"results[{index}]")
        assert list(no_network.iterdir()) == [], "a job left temporary files behind"

    check()


def test_an_unknown_field_name_with_a_line_break_stays_on_one_line(no_network: Path) -> None:
    result = handler.handler({"id": "fuzz", "input": {"audio_url": "s3://bucket/key", "a\nb": 1}})
    assert result["error_type"] == "invalid_input"
    assert len(result["error"].splitlines()) == 1, result["error"]
