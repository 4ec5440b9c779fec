#!/usr/bin/env python3
"""polyhead's BERT (model/bert.h) as HF transformers' BertForPreTraining: the parity peer.

Interpreter: Debian's /usr/bin/python3 with python3-torch (1.13), python3-h5py, python3-numpy
and python3-yaml, and transformers 4.30.2 (with tokenizers 0.13.3, huggingface-hub 0.16.4,
safetensors 0.3.3 and the pure-Python rest) on PYTHONPATH: launch/pyenv.sh installs them into
.venv/hf, so
  PYTHONPATH=.venv/hf /usr/bin/python3 bench/hf_bert.py ...
(the .venv's own tokenizers 0.23 does not work with transformers 4.30).

The model is BertForPreTraining (model.sentence_head nsp or sop: the pooler and the two-class
head cls.seq_relationship) or BertForMaskedLM (none), with the checkpoint's config: hidden_act
"gelu" (HF's exact erf GELU) for polyhead's gelu_erf, "gelu_new" (the tanh form) for gelu,
"relu" for relu; layer_norm_eps; type_vocab_size; max_position_embeddings = seq_len;
intermediate_size = model.d_ff or 4 d. HF's BERT is post-LN with biases, learned positions and
unscaled embeddings: model.norm pre, model.bias false, sinusoidal positions and
model.embed_scale true are refused. Parameter names map one to one (DESIGN.md "BERT:"):
wte, wpe, wtt, emb_ln → bert.embeddings.*; h.{i}.attn.{q,k,v} → attention.self.{query,key,
value}, attn.proj → attention.output.dense, ln1 → attention.output.LayerNorm, mlp.fc →
intermediate.dense, mlp.proj → output.dense, ln2 → output.LayerNorm; mlm.dense, mlm.ln,
mlm.bias → cls.predictions.{transform.dense, transform.LayerNorm, bias} (the decoder is tied
to wte); pooler → bert.pooler.dense, cls → cls.seq_relationship.

Modes
  hf_bert.py --checkpoint CKPT --batch BATCH.json [--double]
loads the HDF5 checkpoint (/model/<name> in full shapes, the resolved config in the attribute
`config`) and a batch (JSON: T, P, tokens [B*T], types [B*T], lengths [B] → attention_mask;
mlm_positions [B*P] and targets [B*P] (-1: an unused slot) → HF's labels [B, T], -100
elsewhere; sentence_labels [B] (-1: none) → next_sentence_label), and prints
`loss X.XXXXXXXX over N predictions and K sentences`: HF's loss without dropout, the mean MLM
cross-entropy over the N labelled positions plus (with a sentence head) the mean sentence
cross-entropy over the K labelled sequences — polyhead's objective (trainer/train_step.cpp).
HF computes the MLM logits at every position and ignores the unlabelled ones; polyhead gathers
the labelled rows first: the same loss.

  hf_bert.py --bench --config CONFIG [key.path=value ...] [--steps N] [--warmup W]
             [--threads 2]
trains BertForMaskedLM of the config's shape (BERT's defaults for the keys it does not give;
dropout model.dropout.resid as hidden_dropout_prob, model.dropout.attn as
attention_probs_dropout_prob) with torch.optim.AdamW (the config's betas, eps, weight decay of
the matrices) and gradient-norm clipping, on random full-length sequences of
train.micro_batch x seq_len tokens (two segments) with P = data.mlm.max_predictions (0: ceil of
data.mlm.prob x seq_len, 15%) labelled distinct positions per sequence, and prints ms/step and
tokens/s (B x T per second) over the timed steps, the peak RSS, and a final JSON line.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import (DEFAULTS, add_bench_arguments, adamw, apply_override,  # noqa: E402
                       check_bench_arguments, merge, peak_rss_mb, timing_fields)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
from hf_map import PortError, bert_config, bert_name_map  # noqa: E402

# BERT's defaults (io/config.h with model.type bert's family defaults).
BERT_DEFAULTS = {
    "model": dict(DEFAULTS["model"], type="bert", norm="post", activation="gelu_erf",
                  layer_norm_eps=1e-12, type_vocab_size=2, sentence_head="none"),
    "train": DEFAULTS["train"],
    "optim": DEFAULTS["optim"],
    "data": {"mlm": {"prob": 0.15, "max_predictions": 0}},
}


def fail(message):
    raise SystemExit(f"hf_bert.py: {message}")


def hf_config(m, dropout=None):
    """The BertConfig of polyhead's model section m; refuses what HF's BERT cannot be."""
    try:
        return bert_config(m, dropout)
    except PortError as e:
        fail(str(e))


def hf_model(m, dropout=None):
    from transformers import BertForMaskedLM, BertForPreTraining

    cfg = hf_config(m, dropout)
    return BertForMaskedLM(cfg) if m["sentence_head"] == "none" else BertForPreTraining(cfg)


def load_polyhead(model, m, group):
    """Copies /model/<name> into the HF model; every HF parameter must be set and every stored
    tensor used."""
    names = bert_name_map(m)
    params = dict(model.named_parameters())  # tied ones once: the decoder is wte, its bias mlm.bias
    missing = sorted(set(params) - set(names.values()))
    if missing:
        fail("HF parameters without a polyhead counterpart: " + ", ".join(missing))
    unused = sorted(set(group.keys()) - set(names))
    if unused:
        fail("checkpoint tensors not in this model: " + ", ".join(unused))
    with torch.no_grad():
        for ours, theirs in names.items():
            if ours not in group:
                fail(f"checkpoint has no /model/{ours}")
            a = np.asarray(group[ours][...], dtype=np.float32)
            p = params[theirs]
            if tuple(a.shape) != tuple(p.shape):
                fail(f"/model/{ours} has shape {a.shape}, {theirs} {tuple(p.shape)}")
            p.copy_(torch.from_numpy(a))
    if model.get_output_embeddings().weight is not params[names["wte"]]:
        fail("the MLM decoder is not tied to the word embeddings")


def evaluate(args):
    import h5py

    with h5py.File(args.checkpoint, "r") as f:
        text = f.attrs["config"]
        m = yaml.safe_load(text.decode() if isinstance(text, bytes) else text)["model"]
        model = hf_model(m)
        load_polyhead(model, m, f["model"])
    with open(args.batch) as fh:
        b = json.load(fh)
    T, P = b["T"], b["P"]
    B = len(b["lengths"])
    tokens = torch.tensor(b["tokens"], dtype=torch.long).view(B, T)
    types = torch.tensor(b["types"], dtype=torch.long).view(B, T)
    lengths = torch.tensor(b["lengths"], dtype=torch.long)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    labels = torch.full((B, T), -100, dtype=torch.long)
    for i in range(B):
        for k in range(P):
            target = b["targets"][i * P + k]
            if target != -1:
                pos = b["mlm_positions"][i * P + k]
                if labels[i, pos] != -100:
                    fail(f"sample {i} predicts position {pos} twice")
                labels[i, pos] = target
    extra = {}
    sentences = 0
    if m["sentence_head"] != "none":
        nsl = torch.tensor(b["sentence_labels"], dtype=torch.long)
        nsl[nsl == -1] = -100
        extra["next_sentence_label"] = nsl
        sentences = int((nsl != -100).sum())
    if args.double:
        model = model.double()
    model.eval()
    with torch.no_grad():
        out = model(input_ids=tokens, attention_mask=mask, token_type_ids=types, labels=labels,
                    **extra)
    print(f"HF transformers BertFor{'MaskedLM' if not extra else 'PreTraining'}, "
          f"hidden_act {model.config.hidden_act}, layer_norm_eps {model.config.layer_norm_eps}")
    print(f"loss {float(out.loss):.8f} over {int((labels != -100).sum())} predictions and "
          f"{sentences} sentences")


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as fh:
        raw = yaml.safe_load(fh.read()) or {}
    for o in args.overrides:
        apply_override(raw, o)
    cfg = merge(BERT_DEFAULTS, raw)
    m, o, tr, mlm = cfg["model"], cfg["optim"], cfg["train"], cfg["data"]["mlm"]
    m["type"], m["sentence_head"] = "bert", "none"
    B, T, V = tr["micro_batch"], m["seq_len"], m["vocab_size"]
    P = mlm["max_predictions"] or math.ceil(mlm["prob"] * T - 1e-4)
    if not 1 <= P < T:
        fail(f"{P} predictions per sequence of {T} tokens")
    model = hf_model(m, dropout=m["dropout"])
    model.train()
    opt = adamw(model, o, o["lr"])
    clip = tr["grad_clip"] if tr["grad_clip"] > 0 else float("inf")
    gen = torch.Generator().manual_seed(args.seed)
    types = (torch.arange(T) >= T // 2).long().expand(B, T)
    mask = torch.ones(B, T, dtype=torch.long)

    def batch():
        tokens = torch.randint(0, V, (B, T), generator=gen)
        labels = torch.full((B, T), -100, dtype=torch.long)
        pos = 1 + torch.rand(B, T - 1, generator=gen).argsort(dim=1)[:, :P]
        labels.scatter_(1, pos, torch.randint(0, V, (B, P), generator=gen))
        return tokens, labels

    n_params = sum(p.numel() for p in model.parameters())
    times = []
    for step in range(args.warmup + args.steps):
        tokens, labels = batch()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=tokens, attention_mask=mask, token_type_ids=types,
                     labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            times.append(dt)
    total = sum(times)
    ms, tps, rss = 1e3 * total / len(times), B * T * len(times) / total, peak_rss_mb()
    import transformers

    print(f"HF transformers {transformers.__version__} BertForMaskedLM, torch {torch.__version__}: "
          f"{os.path.basename(args.config)} L={m['n_layers']} d={m['d_model']} "
          f"H={m['n_heads']} T={T} V={V} B={B} P={P}, {n_params} parameters, "
          f"{torch.get_num_threads()} threads")
    print(f"{ms:.2f} ms/step | {tps:.0f} tok/s | peak RSS {rss:.1f} MiB "
          f"(over {len(times)} steps after {args.warmup} warm-up)")
    print(json.dumps({
        "bench": "hf_bert", "config": args.config, "overrides": list(args.overrides),
        "transformers": transformers.__version__, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "B": B, "T": T, "V": V, "P": P,
        "params": n_params, **timing_fields(times, args.warmup),
        "tokens_per_s": round(tps, 1), "peak_rss_mb": round(rss, 1),
        "final_loss": round(loss.item(), 6)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="polyhead HDF5 checkpoint of a bert model")
    ap.add_argument("--batch", help="the batch (JSON) to evaluate the checkpoint on")
    ap.add_argument("--double", action="store_true", help="compute in float64")
    add_bench_arguments(ap)
    args = ap.parse_args()
    if args.bench:
        check_bench_arguments(ap, args)
        bench(args)
    elif args.checkpoint and args.batch:
        evaluate(args)
    else:
        ap.error("give --checkpoint CKPT --batch BATCH.json, or --bench --config CONFIG")


if __name__ == "__main__":
    main()
