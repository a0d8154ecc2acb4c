"""Results over the size limit (`utils.output.delivery.fit_result`): stored at output_url, or refused with
what to ask for."""

import json
from typing import Any

import pytest

import config
from tests.support.s3_server import LocalS3
from utils.errors import (
    ResultTooLargeError,
)
from utils.output import delivery

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


# --- delivery.fit_result end to end -----------------------------------------------------------------


def _big_result() -> dict[str, Any]:
    """A success result with a meta block, well over a few hundred bytes of JSON."""
    words = [{"word": str(n % 10), "start": n * 0.08, "end": n * 0.08 + 0.05} for n in range(40)]
    return {
        "success": True,
        "text": " ".join(word["word"] for word in words),
        "duration": 3.2,
        "timestamps": {"word": words},
        "meta": {"model": "parakeet-tdt-digits", "audio_seconds": 3.2},
    }


def test_result_within_the_limit_is_returned_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _big_result()
    size = len(json.dumps(result, ensure_ascii=False).encode())
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", size)
    assert delivery.fit_result(result, None) is result
    assert delivery.fit_result(result, "ftp://never.used/out.json") is result


def test_result_over_the_limit_goes_to_the_presigned_url(
    local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _big_result()
    body = json.dumps(result, ensure_ascii=False).encode()
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", len(body) - 1)
    url = local_s3.presigned_put("results/big.json")
    summary = delivery.fit_result(result, url)
    assert summary == {
        "success": True,
        "output_url": url.partition("?")[0],
        "result_bytes": len(body),
        "meta": result["meta"],
    }
    assert "X-Amz" not in json.dumps(summary)
    stored, content_type = local_s3.stored("results/big.json")
    assert (stored, content_type) == (body, "application/json")
    assert json.loads(stored) == result


def test_result_over_the_limit_goes_to_an_s3_uri(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _big_result()
    del result["meta"]
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", 100)
    summary = delivery.fit_result(result, f"s3://{local_s3.bucket}/results/big-s3.json")
    body = json.dumps(result, ensure_ascii=False).encode()
    assert summary == {
        "success": True,
        "output_url": f"s3://{local_s3.bucket}/results/big-s3.json",
        "result_bytes": len(body),
    }
    assert local_s3.stored("results/big-s3.json") == (body, "application/json")


def test_result_over_the_limit_without_output_url_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _big_result()
    size = len(json.dumps(result, ensure_ascii=False).encode())
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", size - 1)
    with pytest.raises(ResultTooLargeError) as caught:
        delivery.fit_result(result, None)
    assert caught.value.error_type == "result_too_large"
    assert str(caught.value) == (
        f"the result is {size} bytes, over the {size - 1}-byte response limit; "
        "send output_url (a presigned PUT URL or s3://bucket/key) to receive it there"
    )
