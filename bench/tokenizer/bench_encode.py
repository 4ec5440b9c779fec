#!/usr/bin/env python3
"""Encoding speed of polyhead's byte-level BPE against tiktoken and HF `tokenizers`, with GPT-2's
ranks on one corpus, and a check that polyhead's ids equal tiktoken's on the whole corpus.

    bench/tokenizer/bench_encode.py --polyhead BUILD/polyhead [--corpus FILE] [--repeats 5]

Interpreter: the venv of launch/pyenv.sh (.venv/bin/python: tiktoken 0.14.0, tokenizers 0.23.3,
and GPT-2's ranks as .venv/share/gpt2.tiktoken). The corpus defaults to one made by
bench/tokenizer/make_corpus.sh in the work directory.

What is timed is encoding only, for all three: each measurement runs in a fresh process that
first reads the corpus (and, for the Python peers, decodes it to str and cuts it into the
batch's chunks), then times one encoding of the whole corpus.
  polyhead   `polyhead tokenizer encode --threads N`: the encode time that it prints (the text
             already in memory; loading the tokenizer and writing the shard are not counted)
  tiktoken   1 thread: enc.encode_ordinary(text); N threads: enc.encode_ordinary_batch(chunks,
             num_threads=N)
  HF         tokenizer.encode_batch(chunks) with RAYON_NUM_THREADS=N (a BPE model from GPT-2's
             vocab.json + merges.txt, converted from the ranks, with the ByteLevel
             pre-tokenizer)
Chunks are about --chunk-kb KiB of whole lines, cut where the text can be cut without changing
the pieces (as polyhead cuts its own chunks). Every program runs once per repeat, in turn, so
that they share the machine's conditions; the table gives the median MB/s (10^6 bytes/s).
"""
import argparse
import array
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "tokenizer"))


def safe_chunks(text, size):
    """Cuts text after a '\\n' that is a whole run of white space and comes before text."""
    cut = re.compile(r"(?<=\S)\n(?=\S)")
    chunks, start = [], 0
    while start < len(text):
        m = cut.search(text, start + size)
        end = m.end() if m else len(text)
        chunks.append(text[start:end])
        start = end
    return chunks


def worker(args):
    """One timed encoding in this process; prints a JSON line."""
    with open(args.corpus, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    chunks = safe_chunks(text, args.chunk_kb * 1024)
    threads = int(args.threads)
    if args.worker == "tiktoken":
        from tiktoken_reference import gpt2_encoding
        enc = gpt2_encoding(args.ranks)
        start = time.perf_counter()
        if threads == 1:
            n = len(enc.encode_ordinary(text))
        else:
            n = sum(len(ids) for ids in enc.encode_ordinary_batch(chunks, num_threads=threads))
        seconds = time.perf_counter() - start
    else:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers
        tok = Tokenizer(models.BPE.from_file(os.path.join(args.hf, "vocab.json"),
                                             os.path.join(args.hf, "merges.txt")))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        start = time.perf_counter()
        encodings = tok.encode_batch(chunks, add_special_tokens=False)
        seconds = time.perf_counter() - start
        n = sum(len(e.ids) for e in encodings)
    print(json.dumps({"bytes": len(data), "tokens": n, "seconds": seconds}))


def run_polyhead(args, threads, out):
    r = subprocess.run([args.polyhead, "tokenizer", "encode", "--tokenizer", args.ranks,
                        "--input", args.corpus, "--out", out, "--threads", str(threads)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"(\d+) bytes -> (\d+) tokens .* in ([0-9.]+) s", r.stderr)
    return {"bytes": int(m[1]), "tokens": int(m[2]), "seconds": float(m[3])}


def run_worker(args, name, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    r = subprocess.run([sys.executable, __file__, "--worker", name, "--threads", str(threads),
                        "--corpus", args.corpus, "--ranks", args.ranks, "--hf", args.hf,
                        "--chunk-kb", str(args.chunk_kb)],
                       capture_output=True, text=True, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def shard_ids(path):
    with open(path, "rb") as f:
        header = array.array("i", f.read(1024))
        ids = array.array("H" if header[0] == 20240520 else "I")
        ids.frombytes(f.read())
    return ids


def check_ids(args, work):
    """polyhead's ids (both tokenizer formats) against tiktoken's on the whole corpus."""
    from tiktoken_reference import gpt2_encoding
    with open(args.corpus, "rb") as f:
        expected = array.array("I", gpt2_encoding(args.ranks).encode_ordinary(f.read().decode()))
    lines = []
    for name, tok in (("ranks", args.ranks), ("vocab.json + merges.txt", args.hf)):
        out = os.path.join(work, "check.bin")
        subprocess.run([args.polyhead, "tokenizer", "encode", "--tokenizer", tok, "--input",
                        args.corpus, "--out", out, "--threads", "2"], check=True,
                       capture_output=True)
        got = array.array("I", shard_ids(out))
        same = got == expected
        where = ""
        if not same:
            where = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b),
                         min(len(got), len(expected)))
            where = f", first difference at token {where}"
        lines.append(f"polyhead ({name}) vs tiktoken: {len(got)} vs {len(expected)} tokens, "
                     f"{'identical' if same else 'DIFFERENT'}{where}")
    return lines, all("identical" in line for line in lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--polyhead", help="the polyhead binary")
    ap.add_argument("--corpus")
    ap.add_argument("--ranks", default=os.path.join(ROOT, ".venv", "share", "gpt2.tiktoken"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="thread counts, comma separated")
    ap.add_argument("--chunk-kb", type=int, default=4)
    ap.add_argument("--work", help="directory for the corpus copy and outputs (default: a temp)")
    ap.add_argument("--worker", choices=["tiktoken", "hf"], help=argparse.SUPPRESS)
    ap.add_argument("--hf", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if not args.polyhead:
        ap.error("--polyhead BIN is required")
    work = args.work or tempfile.mkdtemp(prefix="polyhead-bench-tok-")
    os.makedirs(work, exist_ok=True)
    if not args.corpus:
        args.corpus = os.path.join(work, "corpus.txt")
        if not os.path.exists(args.corpus):
            subprocess.run(["bash", os.path.join(ROOT, "bench", "tokenizer", "make_corpus.sh"),
                            args.corpus], check=True)
    args.hf = os.path.join(work, "gpt2-hf")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "tokenizer", "tiktoken_to_hf.py"),
                    args.ranks, args.hf], check=True)
    threads = [int(t) for t in args.threads.split(",")]
    size = os.path.getsize(args.corpus)
    print(f"corpus {args.corpus}: {size} bytes; {args.repeats} repeats; chunks of "
          f"{args.chunk_kb} KiB for the batch APIs")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    import tiktoken
    import tokenizers
    print(f"tiktoken {tiktoken.__version__}, tokenizers {tokenizers.__version__}, "
          f"Python {platform.python_version()}")
    lines, ok = check_ids(args, work)
    print("\n".join(lines))

    contestants = [(f"polyhead {t}T", lambda t=t: run_polyhead(args, t, os.path.join(work, "o.bin")))
                   for t in threads]
    contestants += [(f"tiktoken {t}T", lambda t=t: run_worker(args, "tiktoken", t)) for t in threads]
    contestants += [(f"HF encode_batch {t}T", lambda t=t: run_worker(args, "hf", t))
                    for t in threads]
    speeds = {name: [] for name, _ in contestants}
    tokens = {}
    for r in range(args.repeats):
        for name, run in contestants:
            res = run()
            speeds[name].append(res["bytes"] / res["seconds"] / 1e6)
            tokens[name] = res["tokens"]
        print(f"repeat {r + 1}: " + ", ".join(f"{n} {s[-1]:.1f}" for n, s in speeds.items()),
              flush=True)
    median = {n: statistics.median(s) for n, s in speeds.items()}
    print(f"\n{'program':24} {'median MB/s':>11} {'min':>7} {'max':>7} {'tokens':>10}")
    for n, s in speeds.items():
        print(f"{n:24} {median[n]:11.1f} {min(s):7.1f} {max(s):7.1f} {tokens[n]:10d}")
    print()
    for t in threads:
        print(f"{t} thread(s): polyhead / tiktoken = "
              f"{median[f'polyhead {t}T'] / median[f'tiktoken {t}T']:.2f}x, polyhead / HF = "
              f"{median[f'polyhead {t}T'] / median[f'HF encode_batch {t}T']:.2f}x")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
