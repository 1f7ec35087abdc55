"""A tiny random-weight Llama model as a GGUF file, for serving with a real engine in tests (no download).

The file carries its own byte-level BPE tokenizer (GPT-2 style, trained here on a few lines of English), BOS
and EOS ids and a chat template, so llama.cpp can serve /v1/completions and /v1/chat/completions from it.
Everything is drawn from one seed, so the same arguments write the same bytes.

The weights are random but shaped so that the model always answers with printable text and never ends early:
every token embedding carries a large constant in dimension 0, which survives the (small) layers and the final
RMSNorm, and the output rows of EOS, BOS and the non-printable byte tokens weigh that dimension strongly
negative, so greedy decoding and top-p sampling never pick them. A request therefore generates exactly
max_tokens tokens, each decoding to non-empty ASCII text.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import numpy as np

BOS, EOS = "<s>", "</s>"
CORPUS = (
    "The model server answers each request with tokens, and the benchmark measures the time to the first "
    "token, the time per output token and the throughput at each concurrency level. A budget for latency "
    "and price decides which serving setup is recommended for the questions and documents of interest. "
    "The city school and the national team played music in the church during the early years of the war; "
    "later the government of the state built a library, a house and a court on the island near the river."
)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_PRETOKEN = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map of the 256 byte values to printable characters (a space is 'Ġ', a newline 'Ċ')."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def train_bpe(corpus: str, n_merges: int) -> list[tuple[str, str]]:
    """The first n_merges merges of byte-level BPE on corpus (ties broken by the pair itself: deterministic)."""
    byte_chars = bytes_to_unicode()
    words: Counter[tuple[str, ...]] = Counter(
        tuple(byte_chars[b] for b in piece.encode()) for piece in _PRETOKEN.findall(corpus)
    )
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, freq in words.items():
            out: list[str] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


def write_tiny_llama(
    path: Path,
    *,
    seed: int = 0,
    n_layers: int = 2,
    hidden: int = 64,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    ffn: int = 128,
    n_merges: int = 250,
    context_length: int = 2048,
) -> Path:
    """Write the model to path (a .gguf file) and return path."""
    import gguf  # imported here: only the tests that serve a real engine need it

    byte_chars = bytes_to_unicode()
    merges = train_bpe(CORPUS, n_merges)
    tokens = [BOS, EOS] + [byte_chars[b] for b in range(256)] + [a + b for a, b in merges]
    assert len(set(tokens)) == len(tokens), "BPE produced a duplicate token"
    types = [gguf.TokenType.CONTROL] * 2 + [gguf.TokenType.NORMAL] * (len(tokens) - 2)
    printable = {byte_chars[b] for b in range(0x20, 0x7F)}
    # Tokens the model must never produce: the specials and the bytes outside printable ASCII.
    banned = [i for i, t in enumerate(tokens) if i < 2 or (len(t) == 1 and t not in printable)]
    vocab = len(tokens)
    head_dim = hidden // n_heads

    rng = np.random.default_rng(seed)

    def randn(*shape: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # numpy shapes are (rows, cols) = (out, in); GGUFWriter stores them reversed, as ggml's ne[] expects.
    embd = randn(vocab, hidden, scale=1.0)
    embd[:, 0] = 8.0  # the constant that the output layer reads as a bias (see the module docstring)
    out = randn(vocab, hidden, scale=1.0)
    out[:, 0] = 0.0
    out[banned, 0] = -40.0

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tokenbench-tiny-llama")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(vocab)
    writer.add_context_length(context_length)
    writer.add_embedding_length(hidden)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(n_heads)
    writer.add_head_count_kv(n_kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([f"{a} {b}" for a, b in merges])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", embd)
    for i in range(n_layers):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(hidden, dtype=np.float32))
        writer.add_tensor(f"{blk}.attn_q.weight", randn(hidden, hidden, scale=0.1))
        writer.add_tensor(f"{blk}.attn_k.weight", randn(n_kv_heads * head_dim, hidden, scale=0.1))
        writer.add_tensor(f"{blk}.attn_v.weight", randn(n_kv_heads * head_dim, hidden, scale=0.1))
        writer.add_tensor(f"{blk}.attn_output.weight", randn(hidden, hidden, scale=0.05))
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate.weight", randn(ffn, hidden, scale=0.1))
        writer.add_tensor(f"{blk}.ffn_up.weight", randn(ffn, hidden, scale=0.1))
        writer.add_tensor(f"{blk}.ffn_down.weight", randn(hidden, ffn, scale=0.05))
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    writer.add_tensor("output.weight", out)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
