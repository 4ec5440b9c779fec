#!/usr/bin/env python3
"""Writes a tiktoken rank file as the GPT-2 / HF `tokenizers` files vocab.json and merges.txt.

    tiktoken_to_hf.py RANKS OUT_DIR [--special TOKEN]...

Interpreter: any Python 3 (standard library only). vocab.json maps each token, shown through
GPT-2's bytes-to-unicode alphabet, to its rank, then each --special token to the next ids
(default: "<|endoftext|>"). merges.txt lists, for every token of two or more bytes in rank order,
the pair it is made of: the two parts that tiktoken's BPE leaves when the token's own bytes are
merged using only the ranks below the token's. GPT-2's ranks convert to GPT-2's own files.
"""
import argparse
import base64
import json
import os


def bytes_to_unicode():
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def parts_below(ranks, token, limit):
    """tiktoken's BPE of `token` using only ranks < limit: lowest rank first, leftmost on ties."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best, at = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < limit and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ranks")
    ap.add_argument("out_dir")
    ap.add_argument("--special", action="append")
    args = ap.parse_args()
    ranks = {}
    with open(args.ranks, "rb") as f:
        for line in f.read().splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    shown = bytes_to_unicode()
    text = lambda b: "".join(shown[x] for x in b)
    vocab = {text(t): r for t, r in sorted(ranks.items(), key=lambda kv: kv[1])}
    for i, special in enumerate(args.special or ["<|endoftext|>"]):
        vocab[special] = len(ranks) + i
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = parts_below(ranks, token, rank)
        if len(parts) != 2:
            raise SystemExit(f"token of rank {rank} is not made of two lower-ranked tokens")
        merges.append(f"{text(parts[0])} {text(parts[1])}")
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(args.out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


if __name__ == "__main__":
    main()
