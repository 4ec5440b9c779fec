#!/usr/bin/env python3
"""Imports HF transformers GPT-2 or BERT weights as a polyhead checkpoint, which
`polyhead eval --checkpoint` evaluates and `polyhead train` fine-tunes with
checkpoint.init_from.

Interpreter: Debian's /usr/bin/python3 with python3-torch (1.13), python3-h5py, python3-numpy
and python3-yaml, and safetensors 0.3.3 from .venv/hf on PYTHONPATH (launch/pyenv.sh):
  PYTHONPATH=.venv/hf /usr/bin/python3 tools/import.py HF_DIR --out CHECKPOINT.h5

HF_DIR holds config.json (model_type gpt2 or bert) and model.safetensors or pytorch_model.bin
(one file; sharded weights are not read). GPT-2 becomes a gpt model (pre-LN, learned positions,
the LM head tied unless tie_word_embeddings is false), BERT a bert model (post-LN, with the nsp
sentence head when the weights hold cls.seq_relationship). The checkpoint is format version 5
(README "Checkpoints"): step 0, zero AdamW moments, every checksum, the model section as its
config, and the tokenizer (vocab.json + merges.txt of HF_DIR as a byte-level BPE tokenizer;
else bytes; the config's data section names the special tokens it holds: <|endoftext|>, or
BERT's [PAD] [CLS] [SEP] [MASK]). An HF config polyhead cannot hold, or weights that do not
fit it, stop the import with one message before anything is written.
"""
import argparse
import json
import os
import sys

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ph_checkpoint  # noqa: E402
from hf_map import (PortError, bert_from_hf, bert_model_section, check_shape,  # noqa: E402
                    gpt_from_hf, gpt_model_section)

FAMILIES = {"gpt2": "gpt", "bert": "bert"}


def fail(message):
    raise SystemExit(f"import.py: {message}")


def read_state(hf_dir):
    """name -> float32 array of the directory's weights."""
    st = os.path.join(hf_dir, "model.safetensors")
    pt = os.path.join(hf_dir, "pytorch_model.bin")
    if os.path.exists(st):
        from safetensors.numpy import load_file

        state = load_file(st)
    elif os.path.exists(pt):
        import torch

        state = {k: v.float().numpy() for k, v in torch.load(pt, map_location="cpu").items()}
    else:
        index = [n for n in os.listdir(hf_dir) if n.endswith(".index.json")]
        fail(f"{hf_dir} has no model.safetensors or pytorch_model.bin"
             + (f" (sharded weights, {index[0]}, are not read)" if index else ""))
    out = {}
    for name, a in state.items():
        if a.dtype.kind == "f":
            out[name] = np.asarray(a, dtype=np.float32)
        elif not name.endswith(("position_ids", "token_type_ids")):  # BERT's index buffers
            fail(f"{name} holds {a.dtype}, not floating point")
    return out


# The special tokens of the config's data section, by their usual texts in each family's vocabulary.
SPECIALS = {"gpt2": {"eot_token": "<|endoftext|>"},
            "bert": {"pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                     "mask_token": "[MASK]"}}


def read_tokenizer(hf_dir, kind):
    """The tokenizer attributes, and the special tokens its vocabulary holds (data section)."""
    vocab, merges = os.path.join(hf_dir, "vocab.json"), os.path.join(hf_dir, "merges.txt")
    if not (os.path.exists(vocab) and os.path.exists(merges)):
        return ("bytes", "", ""), {}
    with open(vocab, encoding="utf-8") as fh:
        vocab_text = fh.read()
    with open(merges, encoding="utf-8") as fh:
        merges_text = fh.read()
    vocab = json.loads(vocab_text)
    data = {key: text for key, text in SPECIALS[kind].items() if text in vocab}
    return ("bpe", vocab_text, merges_text), data


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hf_dir", help="directory with config.json and the weights")
    ap.add_argument("--out", required=True, help="the polyhead checkpoint to write (.h5)")
    args = ap.parse_args()
    config_path = os.path.join(args.hf_dir, "config.json")
    if not os.path.isfile(config_path):
        fail(f"{args.hf_dir} has no config.json: not an HF model directory")
    with open(config_path, encoding="utf-8") as fh:
        c = json.load(fh)
    kind = c.get("model_type", "")
    if kind not in FAMILIES:
        fail(f"{args.hf_dir} holds a '{kind}' model: import takes GPT-2 (model_type gpt2) and "
             "BERT (model_type bert)")
    state = read_state(args.hf_dir)
    tokenizer, data = read_tokenizer(args.hf_dir, kind)
    try:
        if kind == "gpt2":
            m = gpt_model_section(c)
            check_shape(m)
            params = gpt_from_hf(state, m)
        else:
            m = bert_model_section(c, state)
            check_shape(m)
            params = bert_from_hf(state, m)
    except PortError as e:
        fail(f"cannot import {args.hf_dir}: {e}")
    if tokenizer[0] == "bpe" and len(json.loads(tokenizer[1])) != m["vocab_size"]:
        data = {}
        print(f"note: vocab.json has {len(json.loads(tokenizer[1]))} tokens, the model "
              f"{m['vocab_size']}: the tokenizer is stored, train with a matching one")
    cfg = {"model": m}
    if data:
        cfg["data"] = data
    ckpt = ph_checkpoint.Checkpoint(params, yaml.safe_dump(cfg, sort_keys=False), tokenizer)
    ph_checkpoint.write(args.out, ckpt)
    n = sum(a.size for a in params.values())
    print(f"imported {args.hf_dir} ({kind}) as {args.out}: {ph_checkpoint.model_summary(m)}, "
          f"{n} parameters, tokenizer {tokenizer[0]}")


if __name__ == "__main__":
    main()
