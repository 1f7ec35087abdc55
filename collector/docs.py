"""Reference docs generated from the code: the config keys (pydantic models) and the raw schema.

`python -m collector.docs` prints both; the README embeds the output and a test keeps them equal.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from collector.config import (
    Config,
    Experiment,
    InferenceParameters,
    OpenAIEndpoint,
    PayloadBucket,
    Report,
    SimulatedEndpoint,
    SyntheticPayload,
)
from collector.schema import schema_markdown

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("top level", Config),
    ("`payloads[]`", PayloadBucket),
    ("`payloads[].synthetic`", SyntheticPayload),
    ("`experiments[]`", Experiment),
    ("`experiments[].endpoint` with `type: simulated`", SimulatedEndpoint),
    ("`experiments[].endpoint` with `type: openai`", OpenAIEndpoint),
    ("`experiments[].inference_parameters`", InferenceParameters),
    ("`report`", Report),
]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(annotation))
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        return "mapping"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        return "`" + repr(field.default_factory()).replace("|", "\\|") + "`"
    return f"`{field.default}`" if field.default is not None else "`null`"


def config_reference() -> str:
    parts = []
    for title, model in SECTIONS:
        parts.append(f"#### {title}\n\n{(model.__doc__ or '').strip()}\n")
        parts.append("| key | type | default | meaning |\n|---|---|---|---|")
        for name, field in model.model_fields.items():
            parts.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {field.description} |")
        parts.append("")
    return "\n".join(parts)


def main() -> None:
    print("### Config reference\n")
    print(config_reference())
    print("### Raw schema\n")
    print(schema_markdown())


if __name__ == "__main__":
    main()
