#!/usr/bin/env python3
"""polyhead's encoder-decoder (model/encdec.h) from torch.nn modules: the parity peer.

Interpreter: Debian's /usr/bin/python3 with python3-torch (1.13), python3-h5py,
python3-numpy and python3-yaml (`apt-get install python3-torch python3-h5py python3-numpy
python3-yaml`). The pyenv `python3` first on PATH does not have them.

The model is nn.TransformerEncoderLayer / nn.TransformerDecoderLayer stacks (post-LN as
nn.Transformer, or norm_first for pre-LN with the final LayerNorms enc.lnf / dec.lnf), with
polyhead's embeddings: token embeddings scaled by sqrt(d) or not, plus learned (enc.wpe,
dec.wpe) or sinusoidal positions (interleaved sin/cos, as kernels/cpu/embedding.h), and the
output layer lm_head.weight or, by model.share_embeddings, dec.wte (tgt_out) or enc.wte (all).
Keys past each source's length are masked in the encoder and in cross-attention; the decoder's
self-attention is causal. GELU is the tanh approximation, LayerNorm eps 1e-5. torch 1.13's
layers always have biases: model.bias false is refused.

Modes
  torch_encdec.py --checkpoint CKPT --batch BATCH.json [--double]
loads the HDF5 checkpoint (/model/<name> in full shapes, the resolved config in the attribute
`config`) and a padded batch (JSON: S, T, source [B*S], source_lengths [B], tokens [B*T],
targets [B*T] with -1 for none), and prints `loss X.XXXXXXXX over N tokens`: the mean
cross-entropy over the counted targets, without dropout.

  torch_encdec.py --bench --config CONFIG [key.path=value ...] [--steps N] [--warmup W]
                  [--threads 2]
trains the config's shape (the paper's defaults for the keys it does not give) with
torch.optim.AdamW (the config's betas, eps, weight decay of the matrices), label smoothing,
gradient-norm clipping, on random pairs padded to S and T (source and target lengths drawn in
[S/2, S] and [T/2, T]), and prints ms/step and non-pad target tokens/s over the timed steps, the
peak RSS, and a final JSON line. Dropout is at polyhead's sites: model.dropout.embed on the
embeddings, model.dropout.attn on the attention probabilities, model.dropout.resid on every
sub-layer's output (nn's dropout on the FFN's hidden units is removed).

  torch_encdec.py --bench-translate --checkpoint CKPT --input FILE [--beam 4]
                  [--length-penalty 0.6] [--max-len-a 0] [--max-len-b 200] [--batch 32]
                  [--threads 2] [--output FILE]
translates each line of FILE as `polyhead translate` does, with the same options and defaults,
by the beam search of torch_translate.py (incremental decoding with a key/value cache), writes
the best translation of each line to --output (if given), and prints sentences/s over the
search (tokenizing, searching and detokenizing every line; not the start-up nor the loading of
the checkpoint) and a final JSON line.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import (DEFAULTS, add_bench_arguments, adamw, apply_override,  # noqa: E402
                       check_bench_arguments, merge, peak_rss_mb, sinusoidal_table,
                       timing_fields)

# The encoder-decoder's defaults (io/config.h, with model.type encdec's family defaults).
ENCDEC_DEFAULTS = {
    "model": dict(DEFAULTS["model"], type="encdec", encoder_layers=0, decoder_layers=0,
                  src_seq_len=0, share_embeddings="all", pos_encoding="sinusoidal",
                  norm="post", activation="relu", embed_scale=True),
    "train": dict(DEFAULTS["train"], label_smoothing=0.0),
    "optim": DEFAULTS["optim"],
}

LN_EPS = 1e-5


def fail(message):
    raise SystemExit(f"torch_encdec.py: {message}")


def depth(m, key):
    return m[key] if m.get(key, 0) > 0 else m["n_layers"]


class Embedding(nn.Module):
    """scale * wte[token] + positions[t]; the table may be another embedding's (tied)."""

    def __init__(self, m, T, wte):
        super().__init__()
        d = m["d_model"]
        self.wte = wte
        self.scale = math.sqrt(d) if m["embed_scale"] else 1.0
        if m["pos_encoding"] == "learned":
            self.wpe = nn.Parameter(torch.zeros(T, d))
        else:
            self.wpe = None
            self.register_buffer("table", sinusoidal_table(T, d), persistent=False)

    def forward(self, tokens):
        T = tokens.shape[1]
        pos = self.wpe[:T] if self.wpe is not None else self.table[:T]
        return self.wte(tokens) * self.scale + pos.to(self.wte.weight.dtype)


class EncDec(nn.Module):
    def __init__(self, m, dropout=False):
        super().__init__()
        if not m["bias"]:
            fail("model.bias false: torch 1.13's transformer layers always have biases")
        self.m = m
        V, d, H = m["vocab_size"], m["d_model"], m["n_heads"]
        f = m["d_ff"] if m["d_ff"] > 0 else 4 * d
        S = m["src_seq_len"] if m["src_seq_len"] > 0 else m["seq_len"]
        pre = m["norm"] == "pre"
        act = (lambda x: F.gelu(x, approximate="tanh")) if m["activation"] == "gelu" else F.relu
        share = m["share_embeddings"]
        self.enc_wte = nn.Embedding(V, d)
        self.dec_wte = self.enc_wte if share == "all" else nn.Embedding(V, d)
        self.lm_head = nn.Linear(d, V, bias=False) if share == "none" else None
        with torch.no_grad():  # polyhead's N(0, init_std) tables (nn.Embedding's is N(0, 1))
            for table in {self.enc_wte, self.dec_wte}:
                table.weight.normal_(0.0, m["init_std"])
        self.enc_embed = Embedding(m, S, self.enc_wte)
        self.dec_embed = Embedding(m, m["seq_len"], self.dec_wte)
        # Parity runs without dropout in training mode: never torch's fused inference path.
        p = m["dropout"] if dropout else {"embed": 0.0, "attn": 0.0, "resid": 0.0}
        self.drop = nn.Dropout(p["embed"])
        layer = dict(d_model=d, nhead=H, dim_feedforward=f, dropout=p["resid"], activation=act,
                     layer_norm_eps=LN_EPS, batch_first=True, norm_first=pre)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer), depth(m, "encoder_layers"),
            norm=nn.LayerNorm(d, eps=LN_EPS) if pre else None, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer), depth(m, "decoder_layers"),
            norm=nn.LayerNorm(d, eps=LN_EPS) if pre else None)
        # polyhead's dropout sites: model.dropout.attn on the attention probabilities,
        # model.dropout.resid on each sub-layer's output before the residual sum (nn's
        # dropout1/2/3), none on the FFN's hidden units (nn's `dropout`).
        for block in list(self.encoder.layers) + list(self.decoder.layers):
            block.dropout = nn.Identity()
            block.self_attn.dropout = p["attn"]
            if hasattr(block, "multihead_attn"):
                block.multihead_attn.dropout = p["attn"]

    def forward(self, source, lengths, tokens):
        S, T = source.shape[1], tokens.shape[1]
        pad = torch.arange(S)[None, :] >= lengths[:, None]  # True: a padded key
        future = torch.ones(T, T, dtype=torch.bool).triu_(1)  # True: a key a query must not see
        memory = self.encoder(self.drop(self.enc_embed(source)), src_key_padding_mask=pad)
        out = self.decoder(self.drop(self.dec_embed(tokens)), memory, tgt_mask=future,
                           memory_key_padding_mask=pad)
        head = self.lm_head.weight if self.lm_head is not None else self.dec_wte.weight
        return F.linear(out, head)

    def load_polyhead(self, group):
        """Copies /model/<name> (polyhead names, full shapes) into the modules; every expected
        name must be present and every stored one used."""
        m = self.m
        used = set()

        def get(name, shape):
            if name not in group:
                fail(f"checkpoint has no /model/{name}")
            a = np.asarray(group[name][...], dtype=np.float32)
            if tuple(a.shape) != tuple(shape):
                fail(f"/model/{name} has shape {a.shape}, expected {tuple(shape)}")
            used.add(name)
            return torch.from_numpy(a)

        def attention(mha, p, d):
            mha.in_proj_weight.copy_(torch.cat([get(p + f"{x}.weight", (d, d)) for x in "qkv"]))
            mha.in_proj_bias.copy_(torch.cat([get(p + f"{x}.bias", (d,)) for x in "qkv"]))
            mha.out_proj.weight.copy_(get(p + "proj.weight", (d, d)))
            mha.out_proj.bias.copy_(get(p + "proj.bias", (d,)))

        def layer_norm(ln, p, d):
            ln.weight.copy_(get(p + ".weight", (d,)))
            ln.bias.copy_(get(p + ".bias", (d,)))

        def mlp(layer, p, d, f):
            layer.linear1.weight.copy_(get(p + "fc.weight", (f, d)))
            layer.linear1.bias.copy_(get(p + "fc.bias", (f,)))
            layer.linear2.weight.copy_(get(p + "proj.weight", (d, f)))
            layer.linear2.bias.copy_(get(p + "proj.bias", (d,)))

        V, d, T = m["vocab_size"], m["d_model"], m["seq_len"]
        f = m["d_ff"] if m["d_ff"] > 0 else 4 * d
        S = m["src_seq_len"] if m["src_seq_len"] > 0 else T
        with torch.no_grad():
            self.enc_wte.weight.copy_(get("enc.wte", (V, d)))
            if self.dec_wte is not self.enc_wte:
                self.dec_wte.weight.copy_(get("dec.wte", (V, d)))
            if self.lm_head is not None:
                self.lm_head.weight.copy_(get("lm_head.weight", (V, d)))
            if self.enc_embed.wpe is not None:
                self.enc_embed.wpe.copy_(get("enc.wpe", (S, d)))
                self.dec_embed.wpe.copy_(get("dec.wpe", (T, d)))
            for i, layer in enumerate(self.encoder.layers):
                p = f"enc.h.{i}."
                attention(layer.self_attn, p + "attn.", d)
                layer_norm(layer.norm1, p + "ln1", d)
                layer_norm(layer.norm2, p + "ln2", d)
                mlp(layer, p + "mlp.", d, f)
            for i, layer in enumerate(self.decoder.layers):
                p = f"dec.h.{i}."
                attention(layer.self_attn, p + "attn.", d)
                attention(layer.multihead_attn, p + "cross.", d)
                layer_norm(layer.norm1, p + "ln1", d)
                layer_norm(layer.norm2, p + "ln2", d)
                layer_norm(layer.norm3, p + "ln3", d)
                mlp(layer, p + "mlp.", d, f)
            if self.encoder.norm is not None:
                layer_norm(self.encoder.norm, "enc.lnf", d)
                layer_norm(self.decoder.norm, "dec.lnf", d)
        unused = sorted(set(group.keys()) - used)
        if unused:
            fail("checkpoint tensors not in this model: " + ", ".join(unused))


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as fh:
        raw = yaml.safe_load(fh.read()) or {}
    for o in args.overrides:
        apply_override(raw, o)
    cfg = merge(ENCDEC_DEFAULTS, raw)
    m, o, tr = cfg["model"], cfg["optim"], cfg["train"]
    B, T, V = tr["micro_batch"], m["seq_len"], m["vocab_size"]
    S = m["src_seq_len"] if m["src_seq_len"] > 0 else T
    model = EncDec(m, dropout=True)
    model.train()
    opt = adamw(model, o, o["lr"] if o["schedule"] != "noam" else 1e-4)
    clip = tr["grad_clip"] if tr["grad_clip"] > 0 else float("inf")
    gen = torch.Generator().manual_seed(args.seed)

    def batch():
        src_len = torch.randint(S // 2, S + 1, (B,), generator=gen).clamp_(min=1)
        tgt_len = torch.randint(T // 2, T + 1, (B,), generator=gen).clamp_(min=1)
        source = torch.randint(0, V, (B, S), generator=gen)
        tokens = torch.randint(0, V, (B, T), generator=gen)
        targets = torch.randint(0, V, (B, T), generator=gen)
        targets[torch.arange(T)[None, :] >= tgt_len[:, None]] = -1
        return source, src_len, tokens, targets

    n_params = sum(p.numel() for p in model.parameters())
    times, counted = [], 0
    for step in range(args.warmup + args.steps):
        source, src_len, tokens, targets = batch()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(source, src_len, tokens)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1,
                               label_smoothing=tr["label_smoothing"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            times.append(dt)
            counted += int((targets != -1).sum())
    total = sum(times)
    ms, tps, rss = 1e3 * total / len(times), counted / total, peak_rss_mb()
    print(f"torch {torch.__version__}: {os.path.basename(args.config)} "
          f"L={depth(m, 'encoder_layers')}+{depth(m, 'decoder_layers')} d={m['d_model']} "
          f"H={m['n_heads']} S={S} T={T} V={V} B={B}, {n_params} parameters, "
          f"{torch.get_num_threads()} threads")
    print(f"{ms:.2f} ms/step | {tps:.0f} target tok/s | peak RSS {rss:.1f} MiB "
          f"(over {len(times)} steps after {args.warmup} warm-up)")
    print(json.dumps({
        "bench": "torch_encdec", "config": args.config, "overrides": list(args.overrides),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "B": B, "S": S, "T": T,
        "V": V, "params": n_params, **timing_fields(times, args.warmup),
        "target_tokens_per_s": round(tps, 1), "tokens_per_s": round(tps, 1),
        "peak_rss_mb": round(rss, 1),
        "final_loss": round(loss.item(), 6)}))


def load_checkpoint(path):
    """The checkpoint's EncDec (eval mode), its resolved config and the HDF5 root attributes."""
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        cfg = yaml.safe_load(attrs["config"])
        m = cfg["model"]
        if m["type"] != "encdec":
            fail(f"{path} holds a {m['type']} model, not encdec")
        model = EncDec(m)
        model.load_polyhead(f["model"])
    return model, cfg, attrs


def load_export(directory):
    """The EncDec of `tools/export.py CKPT --to torch DIRECTORY`: config.yaml (the checkpoint's
    resolved config) and model.pt (this model's state_dict). In training mode without dropout,
    as evaluate(): never torch's fused inference path."""
    with open(os.path.join(directory, "config.yaml"), encoding="utf-8") as fh:
        m = yaml.safe_load(fh)["model"]
    model = EncDec(m)
    model.load_state_dict(torch.load(os.path.join(directory, "model.pt"), map_location="cpu"))
    return model.train()


def evaluate(args):
    model, _, _ = load_checkpoint(args.checkpoint)
    with open(args.batch) as fh:
        b = json.load(fh)
    B = len(b["source_lengths"])
    source = torch.tensor(b["source"], dtype=torch.long).view(B, b["S"])
    lengths = torch.tensor(b["source_lengths"], dtype=torch.long)
    tokens = torch.tensor(b["tokens"], dtype=torch.long).view(B, b["T"])
    targets = torch.tensor(b["targets"], dtype=torch.long).view(-1)
    source = torch.where(torch.arange(b["S"])[None, :] < lengths[:, None], source, 0)
    if args.double:
        model = model.double()
    model.train()  # dropout is 0 everywhere
    with torch.no_grad():
        logits = model(source, lengths, tokens)
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), targets,
                                 ignore_index=-1, reduction="sum")
    counted = int((targets != -1).sum())
    print(f"loss {float(losses) / counted:.8f} over {counted} tokens")


def bench_translate(args):
    from torch_translate import PeerTokenizer, translate

    torch.set_num_threads(args.threads)
    model, cfg, attrs = load_checkpoint(args.checkpoint)
    model.eval()
    tok = PeerTokenizer(attrs.get("tokenizer", "bytes"), attrs.get("tokenizer_vocab", ""),
                        attrs.get("tokenizer_merges", ""))
    ids = {}
    for key in ("pad", "bos", "eos"):
        text = cfg["data"][f"{key}_token"]
        if text not in tok.vocab:
            fail(f"data.{key}_token {text!r} is not a token of the checkpoint's tokenizer")
        ids[key] = tok.vocab[text]
    opt = dict(beam=args.beam, length_penalty=args.length_penalty, max_len_a=args.max_len_a,
               max_len_b=args.max_len_b, n_best=1, **ids)
    with open(args.input, encoding="utf-8") as fh:
        lines = [line.rstrip("\r") for line in fh.read().split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    t0 = time.perf_counter()
    with torch.inference_mode():
        texts, _ = translate(model, tok, lines, opt, args.batch)
    seconds = time.perf_counter() - t0
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.writelines(t + "\n" for t in texts)
    m = cfg["model"]
    rate, rss = len(lines) / seconds, peak_rss_mb()
    print(f"torch {torch.__version__}: {os.path.basename(args.checkpoint)} "
          f"L={depth(m, 'encoder_layers')}+{depth(m, 'decoder_layers')} d={m['d_model']} "
          f"H={m['n_heads']} T={m['seq_len']} V={m['vocab_size']}, beam {args.beam}, "
          f"batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"{len(lines)} sentences in {seconds:.3f} s | {rate:.1f} sentences/s | "
          f"peak RSS {rss:.1f} MiB")
    print(json.dumps({
        "bench": "torch_translate", "checkpoint": args.checkpoint, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "beam": args.beam, "batch": args.batch,
        "sentences": len(lines), "decode_s": round(seconds, 4),
        "sentences_per_s": round(rate, 2), "peak_rss_mb": round(rss, 1)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="polyhead HDF5 checkpoint")
    ap.add_argument("--batch", help="the padded batch (JSON) to evaluate the checkpoint on; "
                    "bench-translate: sentences decoded at once (default 32)")
    ap.add_argument("--double", action="store_true", help="compute in float64")
    ap.add_argument("--bench-translate", action="store_true",
                    help="beam search speed on a checkpoint, as polyhead translate")
    ap.add_argument("--input", help="sentences to translate, one a line (bench-translate)")
    ap.add_argument("--output", help="where the translations go (bench-translate)")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--length-penalty", type=float, default=0.6)
    ap.add_argument("--max-len-a", type=float, default=0.0)
    ap.add_argument("--max-len-b", type=int, default=200)
    add_bench_arguments(ap)
    args = ap.parse_args()
    if args.bench_translate:
        if not (args.checkpoint and args.input):
            ap.error("--bench-translate needs --checkpoint and --input")
        args.batch = int(args.batch or 32)
        if args.beam < 1 or args.batch < 1:
            ap.error("--beam and --batch must be >= 1")
        bench_translate(args)
    elif args.bench:
        check_bench_arguments(ap, args)
        bench(args)
    elif args.checkpoint and args.batch:
        evaluate(args)
    else:
        ap.error("give --checkpoint CKPT --batch BATCH.json, or --bench --config CONFIG")


if __name__ == "__main__":
    main()
