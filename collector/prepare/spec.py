"""The `prepare:` section of a payload bucket: which dataset rows, rendered by which template, filtered how.

`collector prepare` (and `collector run`, for a prepared file that is missing or out of date) turns it into the
bucket's JSONL `file`, with a provenance file beside it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from collector.config_base import MAX_PROMPTS, MAX_TOKENS, Strict

TemplateName = Literal["chat", "llama3", "llama2", "mistral", "plain"]

# FMBench's question-answering instruction for LongBench rows (its prompt_template_llama3.txt, less the
# model's own markers, which the template adds).
QA_INSTRUCTION = (
    "You are an assistant for question-answering tasks. Use the context in triple backticks to answer the "
    "question.\n```\n{context}\n```\nQuestion: {input}"
)


class PrepareSpec(Strict):
    """Rows of one or more datasets, rendered into prompts and kept when their token count fits the bucket."""

    source: list[str] = Field(
        min_length=1,
        description="Datasets to read, in order: local .jsonl, .csv or .parquet files (relative paths are resolved "
        "against the config file's folder) or `hf:org/name[/subset]/split` through the datasets package (needs a "
        "network and `pip install 'tokenbench[hf]'`). Rows are LongBench-shaped ({input, context, answers, "
        "language, ...}), plain text ({text}, {prompt} or {inputs}) or chat ({messages: [{role, content}]}).",
    )
    template: TemplateName = Field(
        default="plain",
        description="How a row becomes a prompt: chat (the tokenizer's own chat template; sent as messages to chat "
        "endpoints, rendered to text for the others), llama3, llama2 or mistral (the model family's prompt format, "
        "as text for completions-style endpoints; the begin-of-text token is left to the server's tokenizer), or "
        "plain (the instruction as it is).",
    )
    instruction: str | None = Field(
        default=None,
        min_length=1,
        description="The user message, with {field} placeholders filled from each row ({context}, {input} or any "
        "other string field; `{{` and `}}` for literal braces). Default: FMBench's question-answering instruction "
        "when the rows have a context, else {input} (a plain text row's text). Chat rows keep their messages.",
    )
    language: str | None = Field(
        default=None, min_length=1, description="Keep only rows whose `language` field equals this (e.g. en)."
    )
    min_tokens: int = Field(
        default=1, ge=0, le=MAX_TOKENS, description="Shortest rendered prompt to keep, in the tokenizer's tokens."
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        description="Keep rendered prompts shorter than this (exclusive, like FMBench's filters); none: no limit.",
    )
    count: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PROMPTS,
        description="Keep at most this many of the rows that pass, sampled with `seed`; none: keep them all.",
    )
    seed: int = Field(default=0, ge=0, lt=2**63, description="Seed of the sampling; the same seed keeps the same rows.")
    max_source_rows: int | None = Field(
        default=None,
        ge=1,
        description="Read at most this many rows of each source (its first rows; FMBench reads 100 of a hub "
        "dataset); none: read them all.",
    )
    tokenizer: str | None = Field(
        default=None,
        min_length=1,
        description="Tokenizer that counts the rendered prompts (a folder or hub id, as an experiment's). Default: "
        "the tokenizer of the experiments that send this bucket, which must agree.",
    )
    tokenizer_download: bool = Field(
        default=False, description="Allow downloading `tokenizer` from the Hugging Face hub (offline by default)."
    )

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _range(self) -> PrepareSpec:
        if self.max_tokens is not None and self.max_tokens <= self.min_tokens:
            raise ValueError(f"max_tokens ({self.max_tokens}) must be greater than min_tokens ({self.min_tokens})")
        for s in self.source:
            if not s.strip():
                raise ValueError("source: an empty name")
        return self
