#!/usr/bin/env python3
"""HF `tokenizers` as the peer of polyhead's BPE trainer (tests/test_bpe_hf_*.cpp).

Needs the interpreter of launch/pyenv.sh (tokenizers 0.23.3). Two checks:

  bpe_hf_peer.py compat --tokenizer DIR --text FILE --ids SHARD
      Loads DIR/vocab.json + DIR/merges.txt into HF's BPE with GPT-2's byte-level
      pre-tokenizer (add_prefix_space=False, use_regex=True) and decoder, encodes FILE and
      compares with the ids of SHARD (an llm.c token shard written by `polyhead tokenizer
      encode`). Exit 0 when every id is the same, 1 otherwise (the first difference shown).

  bpe_hf_peer.py quality --corpus FILE --vocab-size N --min-frequency F --ids SHARD
      Trains HF's BpeTrainer on FILE with the same settings as polyhead (the 256 bytes as the
      initial alphabet, no special tokens), encodes FILE with it and compares tokens per byte
      with SHARD (FILE encoded by polyhead's own vocabulary). Exit 0 when polyhead's tokens per
      byte is at most 1% above HF's, 1 otherwise.
"""
import argparse
import re
import struct
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SHARD_MAGIC = 20240520


def read_shard(path):
    with open(path, "rb") as f:
        data = f.read()
    header = struct.unpack("<256i", data[:1024])
    if header[0] != SHARD_MAGIC:
        sys.exit(f"{path}: not an llm.c token shard (magic {header[0]})")
    count = header[2]
    if len(data) != 1024 + 2 * count:
        sys.exit(f"{path}: {len(data)} bytes, expected {1024 + 2 * count} for {count} tokens")
    return list(struct.unpack(f"<{count}H", data[1024:]))


def byte_level_tokenizer(model):
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def chunks(text):
    """The text cut after each newline that has a non-space character on both sides: there a
    piece of GPT-2's pattern always ends and the next begins, so the chunks encode to the ids
    of the whole. (After a newline that ends a run of white space it is not so: " \n" at the
    end of a chunk is one piece, in the whole text two.)"""
    return re.split(r"(?<=\S\n)(?=\S)", text)


def encode(tok, text):
    ids = []
    for enc in tok.encode_batch(chunks(text)):
        ids.extend(enc.ids)
    return ids


def compat(args):
    tok = byte_level_tokenizer(
        models.BPE.from_file(f"{args.tokenizer}/vocab.json", f"{args.tokenizer}/merges.txt"))
    with open(args.text, encoding="utf-8", newline="") as f:
        text = f.read()
    theirs = tok.encode(text).ids
    ours = read_shard(args.ids)
    if theirs == ours:
        print(f"compat: {len(ours)} ids identical ({len(text.encode())} bytes)")
        return 0
    i = next((k for k, (a, b) in enumerate(zip(theirs, ours)) if a != b), min(len(theirs), len(ours)))
    lo = max(0, i - 3)
    print(f"compat: ids differ at {i} (HF {len(theirs)} ids, polyhead {len(ours)})")
    print(f"  HF      : {theirs[lo:i + 4]} {[tok.decode([t]) for t in theirs[lo:i + 4]]}")
    print(f"  polyhead: {ours[lo:i + 4]} {[tok.decode([t]) for t in ours[lo:i + 4]]}")
    return 1


def hf_trained(args, text=None):
    """HF's BpeTrainer with polyhead's settings: from the corpus file (as users call it; HF then
    reads the file line by line, so no piece spans a newline and its white space), or, with
    text, from the whole text's pieces (chunks() keeps them), the pieces polyhead counts."""
    tok = byte_level_tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, min_frequency=args.min_frequency,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    if text is None:
        tok.train([args.corpus], trainer)
    else:
        tok.train_from_iterator(chunks(text), trainer)
    return tok


def quality(args):
    """polyhead's tokens/byte against HF's on the corpus: no more than 1% above HF trained from
    the file, and within 1% either way of HF trained on the same pieces as polyhead."""
    with open(args.corpus, encoding="utf-8", newline="") as f:
        text = f.read()
    nbytes = len(text.encode())
    ours = len(read_shard(args.ids)) / nbytes
    files = len(encode(hf_trained(args), text)) / nbytes
    pieces = len(encode(hf_trained(args, text), text)) / nbytes
    print(f"quality: vocabulary {args.vocab_size} on {nbytes} bytes: tokens/byte polyhead "
          f"{ours:.5f}, HF from the file {files:.5f} ({100 * (ours / files - 1):+.2f}%), HF from "
          f"the same pieces {pieces:.5f} ({100 * (ours / pieces - 1):+.2f}%)")
    return 0 if ours <= files * 1.01 and abs(ours / pieces - 1) <= 0.01 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compat")
    c.add_argument("--tokenizer", required=True)
    c.add_argument("--text", required=True)
    c.add_argument("--ids", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--corpus", required=True)
    q.add_argument("--vocab-size", type=int, required=True)
    q.add_argument("--min-frequency", type=int, required=True)
    q.add_argument("--ids", required=True)
    args = p.parse_args()
    return compat(args) if args.cmd == "compat" else quality(args)


if __name__ == "__main__":
    sys.exit(main())
