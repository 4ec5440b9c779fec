#!/usr/bin/env python3
"""BPE training: `polyhead tokenizer train` against HF `tokenizers`' BpeTrainer, side by side.

Both train a byte-level BPE vocabulary on the same corpus with the same settings: vocabulary
size (default 32000), min_frequency (default 2), the 256 bytes as the initial alphabet, GPT-2's
pre-tokenization, no special tokens, and the same number of threads (polyhead --threads, HF
RAYON_NUM_THREADS). Every run is its own process, measured for wall time and peak resident
memory (wait4's ru_maxrss); the two programs alternate (which goes first alternates too) and
each figure is the median of --repeats runs. HF runs as users run it: a Python process that
imports tokenizers, trains and saves vocab.json + merges.txt (polyhead writes the same files).
Then each vocabulary encodes the corpus with its own encoder (polyhead tokenizer encode; HF's
BPE on chunks cut where a GPT-2 piece always begins) and the tokens per byte are reported,
also for HF trained (untimed) on the same pieces as polyhead: HF's train() reads a file line by
line, so its pieces never span a newline, while polyhead pre-tokenizes each file whole, as
GPT-2's encoder sees text.

Needs the interpreter of launch/pyenv.sh (tokenizers 0.23.3):
  .venv/bin/python bench/tokenizer/bench_train.py --polyhead BUILD/polyhead \\
      [--corpus FILE] [--vocab-size 32000] [--min-frequency 2] [--threads 1,2] [--repeats 3]
Without --corpus it builds one with bench/tokenizer/make_corpus.sh (next to the binary).
"""
import argparse
import os
import platform
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

HF_TRAIN = r"""
import sys
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
corpus, vocab, min_frequency, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=min_frequency,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                              show_progress=False)
tok.train([corpus], trainer)
tok.model.save(out)
"""


def run_measured(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS in MiB). Stops the benchmark if it fails."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024.0


def read_shard_count(path):
    with open(path, "rb") as f:
        header = struct.unpack("<256i", f.read(1024))
    return header[2]


def hf_tokens(vocab_dir, corpus):
    from tokenizers import Tokenizer, models, pre_tokenizers
    tok = Tokenizer(models.BPE.from_file(f"{vocab_dir}/vocab.json", f"{vocab_dir}/merges.txt"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    with open(corpus, encoding="utf-8", newline="") as f:
        text = f.read()
    chunks = re.split(r"(?<=\S\n)(?=\S)", text)  # where a GPT-2 piece always begins
    n = 0
    for i in range(0, len(chunks), 4096):
        n += sum(len(e.ids) for e in tok.encode_batch(chunks[i:i + 4096]))
    return n


def hf_train_pieces(corpus, vocab_size, min_frequency, out):
    """HF's BpeTrainer over the whole text's pieces (for the quality comparison; not timed)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    with open(corpus, encoding="utf-8", newline="") as f:
        text = f.read()
    tok.train_from_iterator(re.split(r"(?<=\S\n)(?=\S)", text), trainer)
    os.makedirs(out, exist_ok=True)
    tok.model.save(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--polyhead", required=True, help="the polyhead binary")
    p.add_argument("--corpus", help="text file (default: built by make_corpus.sh)")
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()

    corpus = a.corpus
    if not corpus:
        corpus = os.path.join(os.path.dirname(os.path.abspath(a.polyhead)), "bench_corpus.txt")
        if not os.path.exists(corpus):
            subprocess.run(["bash", os.path.join(HERE, "make_corpus.sh"), corpus], check=True)
    nbytes = os.path.getsize(corpus)
    import tokenizers
    print(f"corpus {corpus}: {nbytes} bytes; vocabulary {a.vocab_size}, min_frequency "
          f"{a.min_frequency}; {a.repeats} runs each (median); HF tokenizers "
          f"{tokenizers.__version__}, Python {platform.python_version()}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")

    tmp = tempfile.mkdtemp(prefix="bench_bpe_")
    rows = []
    for threads in [int(t) for t in a.threads.split(",")]:
        ph_dir, hf_dir = f"{tmp}/polyhead_{threads}", f"{tmp}/hf_{threads}"
        os.makedirs(hf_dir, exist_ok=True)
        ph_cmd = [a.polyhead, "tokenizer", "train", "--input", corpus, "--vocab-size",
                  str(a.vocab_size), "--min-frequency", str(a.min_frequency), "--threads",
                  str(threads), "--out", ph_dir]
        hf_cmd = [sys.executable, "-c", HF_TRAIN, corpus, str(a.vocab_size),
                  str(a.min_frequency), hf_dir]
        hf_env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        ph_runs, hf_runs = [], []
        for r in range(a.repeats):
            order = [("ph", ph_cmd, None), ("hf", hf_cmd, hf_env)]
            for name, cmd, env in (order if r % 2 == 0 else order[::-1]):
                (ph_runs if name == "ph" else hf_runs).append(run_measured(cmd, env))
        ph_s = statistics.median(x[0] for x in ph_runs)
        ph_m = statistics.median(x[1] for x in ph_runs)
        hf_s = statistics.median(x[0] for x in hf_runs)
        hf_m = statistics.median(x[1] for x in hf_runs)
        rows.append((threads, ph_s, ph_m, hf_s, hf_m, ph_runs, hf_runs, ph_dir, hf_dir))

    print("\nthreads | polyhead s | polyhead MiB | HF s   | HF MiB | HF/polyhead time | HF/polyhead RSS")
    for threads, ph_s, ph_m, hf_s, hf_m, ph_runs, hf_runs, _, _ in rows:
        print(f"{threads:7d} | {ph_s:10.2f} | {ph_m:12.1f} | {hf_s:6.2f} | {hf_m:6.1f} | "
              f"{hf_s / ph_s:16.2f} | {hf_m / ph_m:15.2f}")
    for threads, _, _, _, _, ph_runs, hf_runs, _, _ in rows:
        print(f"  runs at {threads} thread(s): polyhead "
              f"{[f'{s:.2f}s/{m:.0f}MiB' for s, m in ph_runs]}, HF "
              f"{[f'{s:.2f}s/{m:.0f}MiB' for s, m in hf_runs]}")

    threads, _, _, _, _, _, _, ph_dir, hf_dir = rows[-1]
    shard = f"{tmp}/polyhead.bin"
    subprocess.run([a.polyhead, "tokenizer", "encode", "--tokenizer", ph_dir, "--input", corpus,
                    "--out", shard], check=True, stderr=subprocess.DEVNULL)
    ph_tpb = read_shard_count(shard) / nbytes
    hf_tpb = hf_tokens(hf_dir, corpus) / nbytes
    pieces_dir = f"{tmp}/hf_pieces"
    hf_train_pieces(corpus, a.vocab_size, a.min_frequency, pieces_dir)
    pieces_tpb = hf_tokens(pieces_dir, corpus) / nbytes
    print(f"\ntokens/byte on the corpus (vocabularies of the {threads}-thread runs): polyhead "
          f"{ph_tpb:.5f}, HF {hf_tpb:.5f} (polyhead {100 * (ph_tpb / hf_tpb - 1):+.2f}%)")
    print(f"HF trained on the same pieces as polyhead (train_from_iterator over chunks that keep "
          f"the whole text's pieces; HF's train() reads files line by line, so its pieces never "
          f"hold a newline and the white space after it): {pieces_tpb:.5f} (polyhead "
          f"{100 * (ph_tpb / pieces_tpb - 1):+.2f}%)")
    print(f"load average at end {os.getloadavg()[0]:.2f}; outputs in {tmp}")


if __name__ == "__main__":
    main()
