"""Getting a result to the client: returned as is when it fits RunPod's response limit, else uploaded.

The query of a presigned URL is a credential: a summary names the location only.
"""

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import config
from utils import sources
from utils.errors import ResultTooLargeError


def fit_result(result: dict[str, Any], output_url: str | None) -> dict[str, Any]:
    """Returns the result itself when it fits RunPod's response limit, else a summary of where it went.

    Args:
        result: The full success result.
        output_url: The client's upload target (presigned PUT or s3://), if any.

    Returns:
        `result`, or `{"success": True, "output_url": <without query>, "result_bytes": n, "meta": …}`
        after uploading the full result to `output_url`.

    Raises:
        ResultTooLargeError: The result is too large and no output_url was given.
        FetchError: The upload failed.
    """
    body = json.dumps(result, ensure_ascii=False).encode()
    if len(body) <= config.MAX_RESULT_BYTES:
        return result
    if output_url is None:
        raise ResultTooLargeError(
            f"the result is {len(body)} bytes, over the {config.MAX_RESULT_BYTES}-byte response limit; "
            "send output_url (a presigned PUT URL or s3://bucket/key) to receive it there"
        )
    sources.upload(output_url, body, "application/json")
    # The query of a presigned URL is a credential: the summary names the location only. An s3:// key
    # is literal (it may hold "?" or "#"), so it is shown as given.
    parts = urlsplit(output_url)
    location = (
        output_url if parts.scheme == "s3" else urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    )
    summary = {"success": True, "output_url": location, "result_bytes": len(body)}
    return summary | {"meta": result["meta"]} if "meta" in result else summary
