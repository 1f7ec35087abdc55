"""A tiny transformers tokenizer folder built in the test with the `tokenizers` library (nothing downloaded).

Its rules are simple enough to count by hand, so tests can compute expected counts without it: text is split
on whitespace, and each piece longer than one character is split once more after its first character, so a
piece of two or more characters is exactly two tokens and a one-character piece one token. The special tokens
`<|user|>`, `<|assistant|>`, `<|end|>` are one token each; plain text gets a `<s>` (BOS) when special tokens
are added. The chat template renders `<|role|>content<|end|>` per message, then `<|assistant|>`.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL_TOKENS = ["[UNK]", "<s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
_TRAINING_TEXT = [
    "the model server answers the question about the river",
    "a small city of stone and water under a bright cloud",
]


def build_tokenizer_folder(folder: Path, chat_template: bool = True) -> Path:
    """Write the tokenizer described above as a transformers folder (tokenizer.json and its config)."""
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("^."), behavior="isolated")]
    )
    tok.train_from_iterator(_TRAINING_TEXT, trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="<s>")
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(folder))
    return folder


def hand_count(text: str) -> int:
    """The built tokenizer's count of text (no special tokens), by its rule and not by running it."""
    return sum(2 if len(piece) > 1 else 1 for piece in text.split())


def hand_count_chat(messages: list[dict[str, str]]) -> int:
    """Tokens of messages rendered by the chat template with the generation prompt: per message the role and
    end tokens plus its content, then the assistant token."""
    return sum(2 + hand_count(m["content"]) for m in messages) + 1
