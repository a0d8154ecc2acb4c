"""Checks a body or event against the `openai` package's typed models, strictly.

The models accept extra fields (our extras ride along), so strict validation is joined by a walk that
names every required field the body lacks, nested entries included.
"""

import json
import types
from typing import Annotated, Any, Union, get_args, get_origin

from openai.types.audio import (
    TranscriptionTextDeltaEvent,
    TranscriptionTextDoneEvent,
    TranscriptionTextSegmentEvent,
)
from pydantic import BaseModel, ValidationError

STREAM_EVENTS: dict[str, type[BaseModel]] = {
    "transcript.text.delta": TranscriptionTextDeltaEvent,
    "transcript.text.segment": TranscriptionTextSegmentEvent,
    "transcript.text.done": TranscriptionTextDoneEvent,
}


def _missing(annotation: Any, value: Any, path: str) -> list[str]:
    """The required fields `value` lacks for `annotation` (a model, a list of them, a union, ...)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _missing(get_args(annotation)[0], value, path)
    if origin in (Union, types.UnionType):
        found = [_missing(arm, value, path) for arm in get_args(annotation) if arm is not type(None)]
        return [] if not found or any(not missing for missing in found) else found[0]
    if origin is list and isinstance(value, list):
        (item,) = get_args(annotation)
        found = (_missing(item, entry, f"{path}{index}.") for index, entry in enumerate(value))
        return [name for names in found for name in names]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, dict):
        missing = []
        for name, field in annotation.model_fields.items():
            key = field.alias or name
            if key not in value:
                missing += [f"{path}{key}"] if field.is_required() else []
            else:
                missing += _missing(field.annotation, value[key], f"{path}{key}.")
        return missing
    return []


def strictly(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """Validates `body` as a client receives it (after JSON) against `model` in strict mode.

    Args:
        model: One of the `openai` package's types.
        body: The body or event.

    Returns:
        The parsed model.

    Raises:
        AssertionError: Naming each field that is missing or of the wrong type.
    """
    received = json.loads(json.dumps(body))
    missing = _missing(model, received, "")
    assert not missing, f"{model.__name__} requires {', '.join(missing)}"
    try:
        return model.model_validate(received, strict=True)
    except ValidationError as error:
        raise AssertionError(f"{model.__name__}: {error}") from None
