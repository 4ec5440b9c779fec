#!/usr/bin/env python3
"""Checks polyhead's code point classes (io/unicode_classes.h) against tiktoken itself, on every
code point: what tiktoken's regex engine takes for a letter, a number, white space or other.

    unicode_classes_tiktoken.py CLASSES

CLASSES holds one byte per code point U+0000..U+10FFFF (0 other, 1 letter, 2 number, 3 space),
as tests/test_tokenizer_exactness.cpp writes it. Interpreter: the venv of launch/pyenv.sh
(tiktoken 0.14.0). Exits 1 listing the code points that differ.

tiktoken does not report its pattern's pieces, so they are made visible through the BPE: an
encoding whose tokens are the 256 bytes plus every prefix of P + c (P a probe character, c the
code point) merges P and c into one token exactly when the pattern puts them into one piece.
With GPT-2's pattern that happens for P = "a" iff c is a letter, P = "1" iff c is a number and
P = "!" iff c is neither (nor white space); each probe is followed by a character of another
class, so that the piece ends there. Surrogates (not text in tiktoken) are left out.
"""
import sys

import tiktoken

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PROBES = (("a", "1", 1), ("1", "a", 2), ("!", "a", 0))  # (prefix, follower, class when joined)
CHUNK = 1 << 16


def joined(prefix, follower, cps):
    ranks = {bytes([b]): b for b in range(256)}
    whole = {}
    for c in cps:
        b = (prefix + chr(c)).encode()
        for k in range(2, len(b) + 1):
            ranks.setdefault(b[:k], len(ranks))
        whole[ranks[b]] = c
    enc = tiktoken.Encoding("probe", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={})
    text = "".join(prefix + chr(c) + follower for c in cps)
    return {whole[t] for t in enc.encode_ordinary(text) if t in whole}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: unicode_classes_tiktoken.py CLASSES")
    with open(sys.argv[1], "rb") as f:
        ours = f.read()
    if len(ours) != 0x110000:
        sys.exit(f"{sys.argv[1]}: {len(ours)} bytes, expected {0x110000}")
    theirs = bytearray([3]) * 0x110000  # white space unless a probe joins
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(cps), CHUNK):
        chunk = cps[start:start + CHUNK]
        for prefix, follower, cls in PROBES:
            for c in joined(prefix, follower, chunk):
                theirs[c] = cls
    names = "other letter number space".split()
    differ = [c for c in cps if ours[c] != theirs[c]]
    for c in differ[:50]:
        print(f"U+{c:04X}: polyhead {names[ours[c]]}, tiktoken {names[theirs[c]]}")
    counts = {n: sum(1 for c in cps if theirs[c] == i) for i, n in enumerate(names)}
    print(f"tiktoken {tiktoken.__version__}: {counts}; {len(differ)} code points differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
