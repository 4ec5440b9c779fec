#!/usr/bin/env python3
"""The ids that tiktoken gives a file with GPT-2's encoding: the reference of polyhead's
tokenizer exactness test (tests/test_tokenizer_exactness.cpp) and of the benchmark.

    tiktoken_reference.py RANKS INPUT OUT_IDS

Interpreter: the venv of launch/pyenv.sh (tiktoken 0.14.0, regex). Writes the ids as
little-endian int32. The encoding is GPT-2's: RANKS (gpt2.tiktoken), GPT-2's pattern and
<|endoftext|> = 50256.
  - Valid UTF-8: enc.encode_ordinary(text), tiktoken as it is.
  - Other bytes (tiktoken takes only str): the pieces that GPT-2's pattern gives (Python's regex
    module, the same pattern) on data.decode("utf-8", "surrogateescape"), in which each invalid
    byte is a lone surrogate, i.e. neither letter, number nor space; each piece is encoded back
    to its bytes with surrogateescape and merged by tiktoken's own BPE of one piece
    (Encoding._encode_single_piece, as tiktoken's _encode_only_native_bpe does).
"""
import array
import sys

import regex
import tiktoken
import tiktoken.load

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def gpt2_encoding(ranks_path):
    return tiktoken.Encoding("gpt2", pat_str=GPT2_PATTERN,
                             mergeable_ranks=tiktoken.load.load_tiktoken_bpe(ranks_path),
                             special_tokens={"<|endoftext|>": 50256})


def reference_ids(enc, data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        return enc.encode_ordinary(text)
    ids = []
    for m in regex.finditer(GPT2_PATTERN, data.decode("utf-8", "surrogateescape")):
        ids.extend(enc._encode_single_piece(m.group().encode("utf-8", "surrogateescape")))
    return ids


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: tiktoken_reference.py RANKS INPUT OUT_IDS")
    enc = gpt2_encoding(sys.argv[1])
    with open(sys.argv[2], "rb") as f:
        data = f.read()
    ids = array.array("i", reference_ids(enc, data))
    assert ids.itemsize == 4
    if sys.byteorder != "little":
        ids.byteswap()
    with open(sys.argv[3], "wb") as f:
        ids.tofile(f)


if __name__ == "__main__":
    main()
