#!/usr/bin/env python3
"""polyhead's GPT in PyTorch: the reference peer for parity tests and benchmarks.

Interpreter: Debian's /usr/bin/python3 with the Debian packages python3-torch (1.13),
python3-h5py, python3-numpy and python3-yaml
(`apt-get install python3-torch python3-h5py python3-numpy python3-yaml`). The pyenv
`python3` first on PATH does not have them.

The model follows polyhead's model/gpt.cpp option for option: learned or sinusoidal
positions, pre- or post-norm blocks, GELU (tanh approximation) or ReLU, optional
sqrt(d) embedding scale, tied or untied LM head, with or without biases, dropout on the
embedding, the attention probabilities and both residual branches, LayerNorm eps 1e-5.

Modes
  Evaluate a polyhead checkpoint (parity with `polyhead eval --checkpoint CKPT --data SHARD`):
    torch_gpt.py --checkpoint CKPT --data SHARD [--batches N] [--double]
  prints `loss X.XXXXXXXX over N tokens`: the mean token loss over the first N*micro_batch
  windows of SHARD (window k = tokens[k*T : k*T+T+1]), no dropout, float32 (or float64
  with --double). --batches defaults to the checkpoint config's train.eval_batches; 0 means
  every window, as in polyhead.

  Training throughput of a config's shape:
    torch_gpt.py --bench --config configs/small.yaml [key.path=value ...]
                 [--steps N] [--warmup W] [--threads 2] [--data SHARD]
  trains with torch.optim.AdamW (the config's betas, eps, weight decay on 2-D parameters
  unless optim.decay_1d, foreach at its default; torch 1.13's AdamW has no fused kernel on
  CPU), the config's dropout, gradient-norm clipping and learning-rate warmup, on random
  tokens (or SHARD's windows), and prints ms/step and tokens/s over the timed steps, the
  peak RSS, and a final JSON line.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

# polyhead's defaults (io/config.h) for the keys this script reads.
DEFAULTS = {
    "model": {
        "vocab_size": 256,
        "n_layers": 2,
        "d_model": 128,
        "n_heads": 4,
        "d_ff": 0,
        "seq_len": 64,
        "pos_encoding": "learned",
        "norm": "pre",
        "activation": "gelu",
        "embed_scale": False,
        "tie_embeddings": True,
        "bias": True,
        "dropout": {"embed": 0.0, "attn": 0.0, "resid": 0.0},
        "init_std": 0.02,
    },
    "train": {"max_steps": 1000, "micro_batch": 32, "seed": 1337, "grad_clip": 1.0,
              "eval_batches": 8},
    "optim": {
        "lr": 1e-3,
        "min_lr": 0.0,
        "warmup_steps": 100,
        "schedule": "cosine",
        "beta1": 0.9,
        "beta2": 0.95,
        "eps": 1e-8,
        "weight_decay": 0.1,
        "decay_1d": False,
    },
}

LN_EPS = 1e-5
SHARD_MAGIC = 20240520


def merge(defaults, given):
    """defaults updated recursively with given (a parsed YAML mapping)."""
    out = {}
    for key, value in defaults.items():
        if isinstance(value, dict):
            out[key] = merge(value, (given or {}).get(key) or {})
        else:
            out[key] = (given or {}).get(key, value)
    return out


def apply_override(cfg, text):
    """Applies one `a.b.c=value` override (value in YAML syntax) to the nested dict cfg."""
    if "=" not in text:
        raise SystemExit(f"torch_gpt.py: expected key.path=value, got '{text}'")
    path, value = text.split("=", 1)
    keys = path.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = yaml.safe_load(value)


def resolve_config(yaml_text, overrides=()):
    raw = yaml.safe_load(yaml_text) or {}
    for o in overrides:
        apply_override(raw, o)
    return merge(DEFAULTS, raw)


class LayerNorm(nn.Module):
    """LayerNorm over the last dimension with an optional bias (torch 1.13's has none)."""

    def __init__(self, d, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, LN_EPS)


class CausalSelfAttention(nn.Module):
    """q, k, v as one [3d, d] linear (rows: q, then k, then v); head h owns rows h*hs.. of each."""

    def __init__(self, m):
        super().__init__()
        d = m["d_model"]
        self.n_heads = m["n_heads"]
        self.qkv = nn.Linear(d, 3 * d, bias=m["bias"])
        self.proj = nn.Linear(d, d, bias=m["bias"])
        self.attn_drop = nn.Dropout(m["dropout"]["attn"])
        self.resid_drop = nn.Dropout(m["dropout"]["resid"])
        T = m["seq_len"]
        # True above the diagonal: the future positions a query must not see.
        self.register_buffer("future", torch.ones(T, T, dtype=torch.bool).triu_(1),
                             persistent=False)

    def forward(self, x):
        B, T, d = x.shape
        hs = d // self.n_heads
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(B, T, self.n_heads, hs).transpose(1, 2)  # [B, H, T, hs]
        k = k.view(B, T, self.n_heads, hs).transpose(1, 2)
        v = v.view(B, T, self.n_heads, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(self.future[:T, :T], float("-inf"))
        att = self.attn_drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, d)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, m):
        super().__init__()
        d = m["d_model"]
        f = m["d_ff"] if m["d_ff"] > 0 else 4 * d
        self.fc = nn.Linear(d, f, bias=m["bias"])
        self.proj = nn.Linear(f, d, bias=m["bias"])
        self.gelu = m["activation"] == "gelu"
        self.drop = nn.Dropout(m["dropout"]["resid"])

    def forward(self, x):
        h = self.fc(x)
        h = F.gelu(h, approximate="tanh") if self.gelu else F.relu(h)
        return self.drop(self.proj(h))


class Block(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.pre = m["norm"] == "pre"
        self.ln1 = LayerNorm(m["d_model"], m["bias"])
        self.attn = CausalSelfAttention(m)
        self.ln2 = LayerNorm(m["d_model"], m["bias"])
        self.mlp = MLP(m)

    def forward(self, x):
        if self.pre:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


def sinusoidal_table(T, d):
    """table[t, 2i] = sin(t / 10000^(2i/d)), table[t, 2i+1] = cos(same), computed in float64."""
    t = np.arange(T, dtype=np.float64)[:, None]
    two_i = (np.arange(d) - np.arange(d) % 2).astype(np.float64)[None, :]
    angle = t / np.power(10000.0, two_i / d)
    table = np.where(np.arange(d)[None, :] % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.from_numpy(table.astype(np.float32))


class GPT(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m
        V, d, T, L = m["vocab_size"], m["d_model"], m["seq_len"], m["n_layers"]
        self.wte = nn.Embedding(V, d)
        self.wpe = nn.Embedding(T, d) if m["pos_encoding"] == "learned" else None
        if m["pos_encoding"] == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_table(T, d), persistent=False)
        else:
            self.pos_table = None
        self.embed_scale = math.sqrt(d) if m["embed_scale"] else None
        self.drop = nn.Dropout(m["dropout"]["embed"])
        self.h = nn.ModuleList(Block(m) for _ in range(L))
        self.lnf = LayerNorm(d, m["bias"]) if m["norm"] == "pre" else None
        self.lm_head = None if m["tie_embeddings"] else nn.Linear(d, V, bias=False)

    def initialize(self, seed):
        """polyhead's distribution: N(0, std) weights and embeddings, residual projections
        N(0, std/sqrt(2L)), biases 0, LayerNorm weights 1."""
        g = torch.Generator().manual_seed(seed)
        std = self.m["init_std"]
        std_resid = std / math.sqrt(2 * self.m["n_layers"])
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                    p.normal_(0.0, std_resid, generator=g)
                elif p.dim() == 2:
                    p.normal_(0.0, std, generator=g)
                elif name.endswith("ln1.weight") or name.endswith("ln2.weight") or name == "lnf.weight":
                    p.fill_(1.0)
                else:
                    p.zero_()

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.wte(idx)
        if self.embed_scale is not None:
            x = x * self.embed_scale
        if self.wpe is not None:
            x = x + self.wpe.weight[:T]
        elif self.pos_table is not None:
            x = x + self.pos_table[:T].to(x.dtype)
        x = self.drop(x)
        for block in self.h:
            x = block(x)
        if self.lnf is not None:
            x = self.lnf(x)
        head = self.lm_head.weight if self.lm_head is not None else self.wte.weight
        logits = F.linear(x, head)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                               reduction="none")
        return logits, loss

    def load_polyhead(self, group):
        """Copies the tensors of an h5py group /model (polyhead names, full shapes) into the
        module; every expected name must be present and every stored name consumed."""
        m = self.m
        stored = set(group.keys())
        used = set()

        def get(name, shape):
            if name not in group:
                raise SystemExit(f"torch_gpt.py: checkpoint has no /model/{name}")
            a = np.asarray(group[name][...], dtype=np.float32)
            if tuple(a.shape) != tuple(shape):
                raise SystemExit(f"torch_gpt.py: /model/{name} has shape {a.shape}, expected {shape}")
            used.add(name)
            return torch.from_numpy(a)

        V, d, T = m["vocab_size"], m["d_model"], m["seq_len"]
        f = m["d_ff"] if m["d_ff"] > 0 else 4 * d
        with torch.no_grad():
            self.wte.weight.copy_(get("wte", (V, d)))
            if self.wpe is not None:
                self.wpe.weight.copy_(get("wpe", (T, d)))
            for i, blk in enumerate(self.h):
                p = f"h.{i}."
                blk.ln1.weight.copy_(get(p + "ln1.weight", (d,)))
                blk.ln2.weight.copy_(get(p + "ln2.weight", (d,)))
                blk.attn.qkv.weight.copy_(torch.cat(
                    [get(p + f"attn.{x}.weight", (d, d)) for x in "qkv"], dim=0))
                blk.attn.proj.weight.copy_(get(p + "attn.proj.weight", (d, d)))
                blk.mlp.fc.weight.copy_(get(p + "mlp.fc.weight", (f, d)))
                blk.mlp.proj.weight.copy_(get(p + "mlp.proj.weight", (d, f)))
                if m["bias"]:
                    blk.ln1.bias.copy_(get(p + "ln1.bias", (d,)))
                    blk.ln2.bias.copy_(get(p + "ln2.bias", (d,)))
                    blk.attn.qkv.bias.copy_(torch.cat(
                        [get(p + f"attn.{x}.bias", (d,)) for x in "qkv"], dim=0))
                    blk.attn.proj.bias.copy_(get(p + "attn.proj.bias", (d,)))
                    blk.mlp.fc.bias.copy_(get(p + "mlp.fc.bias", (f,)))
                    blk.mlp.proj.bias.copy_(get(p + "mlp.proj.bias", (d,)))
            if self.lnf is not None:
                self.lnf.weight.copy_(get("lnf.weight", (d,)))
                if m["bias"]:
                    self.lnf.bias.copy_(get("lnf.bias", (d,)))
            if self.lm_head is not None:
                self.lm_head.weight.copy_(get("lm_head.weight", (V, d)))
        unused = sorted(stored - used)
        if unused:
            raise SystemExit("torch_gpt.py: checkpoint tensors not in this model: " + ", ".join(unused))


def read_shard(path, vocab_size):
    """Tokens of an llm.c shard (256 int32 header: magic, version 1, count; then uint16)."""
    header = np.fromfile(path, dtype="<i4", count=256)
    if header.size != 256 or header[0] != SHARD_MAGIC or header[1] != 1:
        raise SystemExit(f"torch_gpt.py: {path} is not an llm.c token shard (version 1)")
    n = int(header[2])
    if os.path.getsize(path) != 1024 + 2 * n:
        raise SystemExit(f"torch_gpt.py: {path} should be {1024 + 2 * n} bytes for its {n} tokens, "
                         f"is {os.path.getsize(path)}")
    tokens = np.memmap(path, dtype="<u2", mode="r", offset=1024, shape=(n,))
    if n and int(tokens.max()) >= vocab_size:
        raise SystemExit(f"torch_gpt.py: {path} has token ids >= vocab_size {vocab_size}")
    return tokens


def windows(tokens, T, first, count):
    """inputs, targets [count, T] of windows first.. (window k = tokens[k*T : k*T+T+1])."""
    rows = np.stack([np.asarray(tokens[k * T:k * T + T + 1], dtype=np.int64)
                     for k in range(first, first + count)])
    return torch.from_numpy(rows[:, :T].copy()), torch.from_numpy(rows[:, 1:].copy())


def evaluate(args):
    import h5py

    with h5py.File(args.checkpoint, "r") as f:
        text = f.attrs["config"]
        if isinstance(text, bytes):
            text = text.decode()
        cfg = resolve_config(text)
        model = GPT(cfg["model"])
        model.load_polyhead(f["model"])
    m, B = cfg["model"], cfg["train"]["micro_batch"]
    T = m["seq_len"]
    if args.double:
        model = model.double()
    model.eval()
    tokens = read_shard(args.data, m["vocab_size"])
    n_windows = (len(tokens) - 1) // T if len(tokens) > 0 else 0
    batches = cfg["train"]["eval_batches"] if args.batches is None else args.batches
    limit = n_windows if batches <= 0 else min(n_windows, batches * B)
    total, counted = 0.0, 0
    with torch.no_grad():
        for first in range(0, limit, B):
            count = min(B, limit - first)
            x, y = windows(tokens, T, first, count)
            _, losses = model(x, y)
            total += float(losses.double().sum())
            counted += losses.numel()
    loss = total / counted if counted else 0.0
    print(f"loss {loss:.8f} over {counted} tokens")


def learning_rate(o, max_steps, step):
    """polyhead's schedule (trainer/schedule.cpp): linear warmup, then cosine / linear decay
    to min_lr at max_steps, constant, or inverse square root."""
    lr, min_lr, warmup = o["lr"], o["min_lr"], o["warmup_steps"]
    if step < warmup:
        return lr * (step + 1) / warmup
    if o["schedule"] == "constant":
        return lr
    if o["schedule"] == "inverse_sqrt":
        return max(min_lr, lr * math.sqrt(max(warmup, 1) / (step + 1)))
    progress = min(max((step - warmup) / max(1, max_steps - warmup), 0.0), 1.0)
    if o["schedule"] == "linear":
        return lr - (lr - min_lr) * progress
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def adamw(model, o, lr):
    """torch.optim.AdamW as polyhead's: weight decay on the matrices (and on 1-D parameters with
    optim.decay_1d), the config's betas and eps."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() >= 2 or o["decay_1d"] else no_decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=(o["beta1"], o["beta2"]), eps=o["eps"])


def add_bench_arguments(ap):
    """The options every peer's --bench mode takes (and the config overrides)."""
    ap.add_argument("--bench", action="store_true", help="training throughput benchmark")
    ap.add_argument("--config", help="polyhead YAML config (bench)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (bench)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (bench)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (bench)")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("overrides", nargs="*", help="key.path=value config overrides (bench)")


def check_bench_arguments(ap, args):
    if not args.config:
        ap.error("--bench needs --config")
    if args.steps < 1:
        ap.error("--steps must be >= 1")


def timing_fields(times, warmup):
    """The JSON fields of the timed steps' durations (seconds)."""
    return {"steps": len(times), "warmup": warmup,
            "ms_per_step": round(1e3 * sum(times) / len(times), 3),
            "ms_per_step_min": round(1e3 * min(times), 3)}


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as fh:
        cfg = resolve_config(fh.read(), args.overrides)
    m, o, tr = cfg["model"], cfg["optim"], cfg["train"]
    B, T, V = tr["micro_batch"], m["seq_len"], m["vocab_size"]
    model = GPT(m)
    model.initialize(args.seed)
    model.train()

    opt = adamw(model, o, o["lr"])
    clip = tr["grad_clip"] if tr["grad_clip"] > 0 else float("inf")

    tokens = read_shard(args.data, V) if args.data else None
    gen = torch.Generator().manual_seed(args.seed)

    def batch(step):
        if tokens is None:
            w = torch.randint(0, V, (B, T + 1), generator=gen)
            return w[:, :T].contiguous(), w[:, 1:].contiguous()
        n_windows = (len(tokens) - 1) // T
        return windows(tokens, T, (step * B) % max(1, n_windows - B), B)

    n_params = sum(p.numel() for p in model.parameters())
    times = []
    for step in range(args.warmup + args.steps):
        x, y = batch(step)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, losses = model(x, y)
        loss = losses.mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for g in opt.param_groups:
            g["lr"] = learning_rate(o, tr["max_steps"], step)
        opt.step()
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            times.append(dt)
        if args.verbose:
            print(f"step {step}: loss {loss.item():.4f}, {dt * 1e3:.1f} ms", flush=True)

    total = sum(times)
    ms = 1e3 * total / len(times)
    tps = B * T * len(times) / total
    rss = peak_rss_mb()
    print(f"torch {torch.__version__}: {os.path.basename(args.config)} L={m['n_layers']} "
          f"d={m['d_model']} H={m['n_heads']} T={T} V={V} B={B}, {n_params} parameters, "
          f"{torch.get_num_threads()} threads")
    print(f"{ms:.2f} ms/step | {tps:.0f} tok/s | peak RSS {rss:.1f} MiB "
          f"(over {len(times)} steps after {args.warmup} warm-up)")
    print(json.dumps({
        "bench": "torch", "config": args.config, "overrides": list(args.overrides),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "B": B, "T": T, "V": V,
        "params": n_params, **timing_fields(times, args.warmup),
        "tokens_per_s": round(tps, 1), "peak_rss_mb": round(rss, 1),
        "final_loss": round(loss.item(), 6)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="polyhead HDF5 checkpoint to evaluate")
    ap.add_argument("--data", help="llm.c token shard (evaluation data, or bench tokens)")
    ap.add_argument("--batches", type=int, default=None,
                    help="micro-batches to evaluate (default train.eval_batches; 0: all)")
    ap.add_argument("--double", action="store_true", help="evaluate in float64")
    ap.add_argument("--verbose", action="store_true", help="print every step (bench)")
    add_bench_arguments(ap)
    args = ap.parse_args()
    if args.bench:
        check_bench_arguments(ap, args)
        bench(args)
    elif args.checkpoint:
        if not args.data:
            ap.error("--checkpoint needs --data SHARD")
        evaluate(args)
    else:
        ap.error("give --checkpoint CKPT --data SHARD, or --bench --config CONFIG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
