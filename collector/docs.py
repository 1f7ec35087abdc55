"""Reference docs generated from the code: the config keys (pydantic models) and the raw schema.

`python -m collector.docs` rewrites the generated blocks of README.md; a test fails when they are stale.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from collector.aws.endpoint_config import BedrockEndpoint, SageMakerDeploy, SageMakerEndpoint
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
from collector.lengths import LengthDistribution
from collector.load_models import RateLoad, SweepLoad
from collector.prepare.spec import PrepareSpec
from collector.schema import schema_markdown

REPO = Path(__file__).resolve().parents[1]

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("top level", Config),
    ("`payloads[]`", PayloadBucket),
    ("`payloads[].prepare`", PrepareSpec),
    ("`payloads[].synthetic`", SyntheticPayload),
    ("`payloads[].synthetic.output_tokens`", LengthDistribution),
    ("`experiments[]`", Experiment),
    ("`experiments[].endpoint` with `type: simulated`", SimulatedEndpoint),
    ("`experiments[].endpoint` with `type: openai`", OpenAIEndpoint),
    ("`experiments[].load` with `model: rate`", RateLoad),
    ("`experiments[].load` with `model: sweep`", SweepLoad),
    ("`experiments[].endpoint` with `type: bedrock`", BedrockEndpoint),
    ("`experiments[].endpoint` with `type: sagemaker`", SageMakerEndpoint),
    ("`experiments[].endpoint.deploy` (`type: sagemaker`)", SageMakerDeploy),
    ("`experiments[].inference_parameters`", InferenceParameters),
    ("`report`", Report),
]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_name(a) for a in typing.get_args(annotation)))
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
        made = field.default_factory()
        text = repr(made)
        if isinstance(made, BaseModel):  # as a config would write it: {model: closed}
            text = "{" + ", ".join(f"{k}: {v}" for k, v in made.model_dump().items()) + "}"
        return "`" + text.replace("|", "\\|") + "`"
    default = field.default
    if isinstance(default, Path) and default.is_absolute():  # a project folder: show it as the repo sees it
        default = default.relative_to(REPO)
    return f"`{default}`" if default is not None else "`null`"


def config_reference() -> str:
    parts = []
    for title, model in SECTIONS:
        parts.append(f"#### {title}\n\n{inspect.cleandoc(model.__doc__ or '')}\n")
        parts.append("| key | type | default | meaning |\n|---|---|---|---|")
        # The kind tag first: a model inheriting its other keys (SimulatedEndpoint) lists the inherited ones first.
        fields = sorted(model.model_fields.items(), key=lambda item: item[0] not in ("type", "model"))
        for name, field in fields:
            parts.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {field.description} |")
        parts.append("")
    return "\n".join(parts)


GENERATED = {"config-reference": config_reference, "raw-schema": schema_markdown}


def render(readme: str) -> str:
    """README text with each generated block replaced by its current content."""
    for name, make in GENERATED.items():
        start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
        head, _, rest = readme.partition(start)
        _, _, tail = rest.partition(end)
        if not rest:
            raise ValueError(f"README.md lacks the marker {start}")
        readme = f"{head}{start}\n{make().strip()}\n{end}{tail}"
    return readme


def main() -> None:
    path = REPO / "README.md"
    path.write_text(render(path.read_text()))
    print(f"updated {path}")


if __name__ == "__main__":
    main()
