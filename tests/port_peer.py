#!/usr/bin/env python3
"""The peer of tests/test_port.cpp: tiny random HF models to import, and the logits of an
exported model on the batch of a `polyhead eval --logits` file.

Interpreter: Debian's /usr/bin/python3 with python3-torch (1.13), python3-h5py, python3-numpy,
python3-yaml, and transformers 4.30.2 + safetensors 0.3.3 on PYTHONPATH (.venv/hf).

  port_peer.py make-hf gpt|bert DIR [key=value ...]
      saves a randomly initialised GPT2LMHeadModel / BertForMaskedLM (tiny, V=256, T=32; the
      GPT2Config / BertConfig keys given override) with save_pretrained (safetensors).
  port_peer.py compare LOGITS.json MODEL_DIR
      runs MODEL_DIR (an HF directory, or tools/export.py --to torch's for encdec) on the batch
      of LOGITS.json and prints `max_abs_diff X over N logits` against the file's logits (BERT:
      the counted prediction slots), then `tokenizer CLASS of N tokens` when MODEL_DIR holds
      tokenizer_config.json (AutoTokenizer loads the tokenizer).
  port_peer.py same-tensors A.h5 B.h5
      prints `N tensors, K differ NAMES`: the /model tensors of two checkpoints, byte for byte.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))


def make_hf(family, out, overrides):
    import torch
    from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(7)
    extra = {k: json.loads(v) for k, v in (o.split("=", 1) for o in overrides)}
    if family == "gpt":
        cfg = dict(vocab_size=256, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                   resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        cfg.update(extra)
        model = GPT2LMHeadModel(GPT2Config(**cfg))
    else:
        cfg = dict(vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=128, max_position_embeddings=32, hidden_dropout_prob=0.0,
                   attention_probs_dropout_prob=0.0)
        cfg.update(extra)
        model = BertForMaskedLM(BertConfig(**cfg))
    model.save_pretrained(out, safe_serialization=True)


def model_logits(b, model_dir):
    import torch

    B, T = b["B"], b["T"]
    tokens = torch.tensor(b["tokens"], dtype=torch.long).view(B, T)
    with torch.no_grad():
        if b["family"] == "gpt":
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
            return model(input_ids=tokens).logits.reshape(B * T, -1)
        if b["family"] == "bert":
            from transformers import AutoModelForMaskedLM, BertForPreTraining

            try:
                model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
            except ValueError:
                model = BertForPreTraining.from_pretrained(model_dir).eval()
            mask = (torch.arange(T)[None, :] < torch.tensor(b["lengths"])[:, None]).long()
            types = torch.tensor(b["types"], dtype=torch.long).view(B, T)
            out = model(input_ids=tokens, attention_mask=mask, token_type_ids=types)
            logits = getattr(out, "logits", None)
            logits = out.prediction_logits if logits is None else logits
            P = b["P"]
            pos = torch.tensor(b["mlm_positions"], dtype=torch.long).view(B, P)
            return torch.stack([logits[i, pos[i]] for i in range(B)]).reshape(B * P, -1)
        from torch_encdec import load_export

        model = load_export(model_dir)
        S = b["S"]
        source = torch.tensor(b["source"], dtype=torch.long).view(B, S)
        lengths = torch.tensor(b["source_lengths"], dtype=torch.long)
        source = torch.where(torch.arange(S)[None, :] < lengths[:, None], source, 0)
        return model(source, lengths, tokens).reshape(B * T, -1)


def compare(logits_file, model_dir):
    with open(logits_file) as fh:
        b = json.load(fh)
    ours = np.asarray(b["logits"], dtype=np.float64).reshape(b["rows"], b["V"])
    theirs = model_logits(b, model_dir).double().numpy()
    rows = np.arange(b["rows"])
    if b["family"] == "bert":  # only the counted slots: an unused one gathers position 0
        rows = rows[np.asarray(b["targets"]) != -1]
    diff = np.abs(ours[rows] - theirs[rows])
    print(f"max_abs_diff {diff.max():.3e} over {diff.size} logits")
    if os.path.exists(os.path.join(model_dir, "tokenizer_config.json")):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_dir)
        print(f"tokenizer {type(tok).__name__} of {len(tok)} tokens")


def same_tensors(a, b):
    import h5py

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names = sorted(fa["model"].keys())
        if names != sorted(fb["model"].keys()):
            print(f"different tensors: {names} and {sorted(fb['model'].keys())}")
            return
        differ = [n for n in names if fa["model"][n][()].tobytes() != fb["model"][n][()].tobytes()]
        print(f"{len(names)} tensors, {len(differ)} differ {' '.join(differ)}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "same-tensors":
        same_tensors(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "make-hf":
        make_hf(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
