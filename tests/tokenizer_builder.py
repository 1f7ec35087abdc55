"""A tiny transformers tokenizer folder built in the test with the `tokenizers` library (nothing downloaded).

Its rules are simple enough to count by hand, so tests can compute expected counts without it: text is split
on whitespace, and each piece longer than one character is split once more after its first character, so a
piece of two or more characters is exactly two tokens and a one-character piece one token. The special tokens
`<|user|>`, `<|assistant|>`, `<|end|>` are one token each; plain text gets a `<s>` (BOS) when special tokens
are added. The chat template renders `<|role|>content<|end|>` per message, then `<|assistant|>`.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
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


# A byte-level BPE like Llama 3's: ByteLevel pre-tokenizer (GPT-2 split regex) and decoder, a BOS added to plain
# text, and a chat template with header and end-of-turn tokens that trims message contents, as Llama 3's does.
BPE_SPECIAL_TOKENS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
BPE_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
_BPE_TEXT = """
The river runs through the old city, past the library, the market and the school. In the early morning the
water is quiet and the light is soft over the stone bridges. People walk to work along the bank, and the
boats carry bread, fruit, paper and wood from the farms in the north. A model server answers each request in
the order it arrives; the latency of a token depends on the batch, the memory of the machine and the length of
the context. Every question has an answer, but some answers cost more than others, and the budget decides which
system is chosen. The team measured the performance of three engines over several weeks, during the winter and
the spring, and wrote a report about the price of each request. After the first test they changed the
configuration, raised the concurrency and repeated the run until the numbers were stable. Later that year the
company moved its offices to the south of the island, near the harbour, where ships from many countries unload
their goods. Music played in the square every evening; families gathered, children ran between the trees and
old friends told stories about the war, the flood and the great fire that destroyed half of the houses. The
government built new roads, a hospital, a museum of science and a park with a lake in the middle. Students
study history, law, medicine, physics, language and art at the university on the hill. Their teachers believe
that curiosity, patience and honest work matter more than talent. A document describes the data, the method
and the results, and a reader can check each figure against the raw rows. Simple words make clear sentences:
green fields, dark clouds, bright stars, warm bread, cold snow, fast horses, slow trains, small birds, large
windows, heavy doors, quick answers, careful questions, open gardens and quiet rooms.
"""


def build_bpe_tokenizer_folder(folder: Path, vocab_size: int = 600) -> Path:
    """Train the byte-level BPE described above on a few hundred words and write it as a transformers folder."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=BPE_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([line for line in _BPE_TEXT.splitlines() if line.strip()], trainer)
    bos = "<|begin_of_text|>"
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tok.token_to_id(bos))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token="<|eot_id|>")
    fast.chat_template = BPE_CHAT_TEMPLATE
    fast.save_pretrained(str(folder))
    return folder
