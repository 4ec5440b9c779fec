#!/usr/bin/env python3
"""sacrebleu's corpus BLEU of corpora written by tests/test_bleu.cpp: the peer of trainer/bleu.

Usage: bleu_peer.py IN OUT (needs the sacrebleu package: launch/pyenv.sh installs it).
IN holds corpora, each as a little-endian uint32 count of pairs, then per pair a uint32 byte
length and the UTF-8 bytes of the hypothesis, then the same for its reference. OUT gets one
line per corpus: the score (repr), hyp_len, ref_len, the 4 matched n-gram counts, the 4 n-gram
totals, a tab, and str() of sacrebleu's score.
"""
import struct
import sys

import sacrebleu


def read_corpora(data):
    at = 0

    def u32():
        nonlocal at
        (v,) = struct.unpack_from("<I", data, at)
        at += 4
        return v

    def text():
        nonlocal at
        n = u32()
        s = data[at : at + n].decode("utf-8")
        at += n
        return s

    while at < len(data):
        pairs = [(text(), text()) for _ in range(u32())]
        yield [h for h, _ in pairs], [r for _, r in pairs]


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        for hyps, refs in read_corpora(data):
            b = sacrebleu.corpus_bleu(hyps, [refs])
            fields = [repr(b.score), b.sys_len, b.ref_len, *b.counts, *b.totals]
            out.write(" ".join(str(x) for x in fields) + "\t" + str(b) + "\n")


if __name__ == "__main__":
    main()
