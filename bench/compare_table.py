#!/usr/bin/env python3
"""The tables of compare_torch.sh and compare_encdec.sh from their JSON lines.

Interpreter: any python3 >= 3.8, standard library only (the scripts use Debian's
/usr/bin/python3).

  compare_table.py FILE.jsonl

One row per (shape, environment, program) with the median of each figure over its runs.
Training records (those with tokens_per_s: bench_train, torch_gpt.py --bench,
torch_encdec.py --bench) make the training table, with polyhead's ratios to the program
labelled "torch" and to "baseline" of the same shape and environment. Translation records
(kind "translate", from compare_encdec.sh) make a second table: sentences/s over the decoding
alone, the whole process's wall time, and polyhead's ratio to "torch".
"""
import json
import statistics
import sys


def rows_of(runs, figures):
    rows = []
    for r in runs:
        key = (r["shape"], r["env"], r["bench"])
        if any((x["shape"], x["env"], x["bench"]) == key for x in rows):
            continue
        same = [x for x in runs if (x["shape"], x["env"], x["bench"]) == key]
        row = dict(r, runs=len(same))
        for f in figures:
            if f in r:
                row[f] = statistics.median(x[f] for x in same)
        rows.append(row)
    return rows


def peer_of(rows, r, bench):
    return next((p for p in rows if p["shape"] == r["shape"] and p["env"] == r["env"]
                 and p["bench"] == bench), None)


def training_table(runs):
    rows = rows_of(runs, ("tokens_per_s", "ms_per_step", "peak_rss_mb", "mfu", "other_cpu_frac"))
    print("| shape | BLAS env | program | B x T | steps x runs | tokens/s | ms/step | peak RSS MiB "
          "| MFU | polyhead/torch tok/s | RSS polyhead/torch | polyhead/baseline tok/s "
          "| other load |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        torch, base = peer_of(rows, r, "torch"), peer_of(rows, r, "baseline")
        ratio = rss = vs_base = ""
        if r["bench"] == "polyhead" and torch:
            ratio = f"{r['tokens_per_s'] / torch['tokens_per_s']:.2f}x"
            rss = f"{r['peak_rss_mb'] / torch['peak_rss_mb']:.2f}"
        if r["bench"] == "polyhead" and base:
            vs_base = f"{r['tokens_per_s'] / base['tokens_per_s']:.3f}x"
        mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else ""
        bt = f"{r['B']}x{r['S']}/{r['T']}" if "S" in r else f"{r['B']}x{r['T']}"
        print(f"| {r['shape']} | {r['env']} | {r['bench']} | {bt} | {r['steps']} x {r['runs']} "
              f"| {r['tokens_per_s']:.0f} | {r['ms_per_step']:.1f} | {r['peak_rss_mb']:.0f} "
              f"| {mfu} | {ratio} | {rss} | {vs_base} | {100 * r['other_cpu_frac']:.0f}% |")


def translate_table(runs):
    rows = rows_of(runs, ("sentences_per_s", "decode_s", "wall_s", "peak_rss_mb",
                          "other_cpu_frac"))
    print("| shape | BLAS env | program | beam | batch | sentences x runs | decode s "
          "| sentences/s | process wall s | peak RSS MiB | polyhead/torch sentences/s "
          "| same output | other load |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        torch = peer_of(rows, r, "torch")
        ratio = same = ""
        if r["bench"] == "polyhead" and torch:
            ratio = f"{r['sentences_per_s'] / torch['sentences_per_s']:.2f}x"
        if "agreement" in r:
            same = f"{100 * r['agreement']:.1f}%"
        print(f"| {r['shape']} | {r['env']} | {r['bench']} | {r['beam']} | {r['batch']} "
              f"| {r['sentences']} x {r['runs']} | {r['decode_s']:.2f} "
              f"| {r['sentences_per_s']:.1f} | {r['wall_s']:.2f} | {r['peak_rss_mb']:.0f} "
              f"| {ratio} | {same} | {100 * r['other_cpu_frac']:.0f}% |")


def main():
    runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    training = [r for r in runs if r.get("kind") != "translate"]
    translate = [r for r in runs if r.get("kind") == "translate"]
    if training:
        training_table(training)
    if training and translate:
        print()
    if translate:
        translate_table(translate)


if __name__ == "__main__":
    main()
