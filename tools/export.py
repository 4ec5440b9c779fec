#!/usr/bin/env python3
"""Exports a polyhead checkpoint: a GPT or BERT to HF transformers, an encoder-decoder to the
PyTorch state dict of bench/torch_encdec.py's model.

Interpreter: Debian's /usr/bin/python3 with python3-torch (1.13), python3-h5py, python3-numpy
and python3-yaml, and transformers 4.30.2 + safetensors 0.3.3 from .venv/hf on PYTHONPATH
(launch/pyenv.sh installs them):
  PYTHONPATH=.venv/hf /usr/bin/python3 tools/export.py CHECKPOINT --to hf OUT_DIR
  PYTHONPATH=.venv/hf /usr/bin/python3 tools/export.py CHECKPOINT --to torch OUT_DIR

--to hf (gpt, bert) writes OUT_DIR/config.json and model.safetensors (save_pretrained) of
GPT2LMHeadModel (gpt), BertForPreTraining (bert with a sentence head) or BertForMaskedLM (bert
without one). --to torch (encdec) writes OUT_DIR/model.pt, torch_encdec.EncDec's state_dict, and
OUT_DIR/config.yaml, the checkpoint's resolved config (torch_encdec.load_export reads both).
A checkpoint with a byte-level BPE tokenizer also gets vocab.json, merges.txt and
tokenizer_config.json (GPT2Tokenizer, the config's special tokens), which AutoTokenizer loads.

Every tensor's checksum is verified first. A model option the target cannot express (e.g.
model.norm post for GPT-2) stops the export with one message naming it, before anything is
written; the files are written into OUT_DIR.tmp and moved into OUT_DIR at the end.
"""
import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))

import ph_checkpoint  # noqa: E402
from hf_map import PortError, bert_config, bert_name_map, gpt_config, gpt_to_hf  # noqa: E402


def fail(message):
    raise SystemExit(f"export.py: {message}")


def hf_model(ckpt):
    """The HF model of a gpt or bert checkpoint, its weights set."""
    import torch
    from transformers import BertForMaskedLM, BertForPreTraining, GPT2LMHeadModel

    m = ckpt.model
    if m["type"] == "gpt":
        model = GPT2LMHeadModel(gpt_config(m))
        state = gpt_to_hf(ckpt.params, m)
    else:
        cfg = bert_config(m)
        model = (BertForMaskedLM if m["sentence_head"] == "none" else BertForPreTraining)(cfg)
        state = {theirs: ckpt.params[ours] for ours, theirs in bert_name_map(m).items()}
    params = dict(model.named_parameters())  # a tied tensor once
    missing = sorted(set(params) - set(state))
    unused = sorted(set(state) - set(params))
    if missing or unused:
        fail(f"the mapping does not cover the HF model: missing {missing}, unused {unused}")
    with torch.no_grad():
        for name, a in state.items():
            if tuple(params[name].shape) != a.shape:
                fail(f"{name}: the checkpoint's tensor has shape {a.shape}, HF's "
                     f"{tuple(params[name].shape)}")
            params[name].copy_(torch.from_numpy(a))
    return model


def torch_encdec_model(ckpt):
    from torch_encdec import EncDec

    model = EncDec(ckpt.model)
    model.load_polyhead(ckpt.params)
    return model


def tokenizer_files(ckpt):
    """{file name: text} of the checkpoint's tokenizer for HF (bpe only)."""
    if ckpt.tokenizer != "bpe":
        return {}
    merges = ckpt.tokenizer_merges
    # GPT2Tokenizer skips the first line of merges.txt (the "#version" header).
    if not merges.startswith("#version"):
        merges = "#version: 0.2\n" + merges
    if not merges.endswith("\n"):
        merges += "\n"
    data = ckpt.config.get("data") or {}
    special = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": ckpt.model["seq_len"],
               "add_prefix_space": False, "errors": "replace"}
    eot = data.get("eot_token") or ""
    for key, value in (("bos_token", data.get("bos_token") or eot),
                       ("eos_token", data.get("eos_token") or eot), ("unk_token", eot),
                       ("pad_token", data.get("pad_token")), ("cls_token", data.get("cls_token")),
                       ("sep_token", data.get("sep_token")),
                       ("mask_token", data.get("mask_token"))):
        if value:
            special[key] = value
    return {"vocab.json": ckpt.tokenizer_vocab, "merges.txt": merges,
            "tokenizer_config.json": json.dumps(special, indent=2, ensure_ascii=False) + "\n"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="polyhead HDF5 checkpoint")
    ap.add_argument("--to", required=True, nargs=2, metavar=("FORMAT", "OUT_DIR"),
                    help="hf (gpt, bert) or torch (encdec), and the output directory")
    args = ap.parse_args()
    target, out = args.to
    if target not in ("hf", "torch"):
        fail(f"--to {target}: the formats are hf (gpt, bert) and torch (encdec)")
    if os.path.exists(out) and not os.path.isdir(out):
        fail(f"{out} exists and is not a directory")
    ckpt = ph_checkpoint.read(args.checkpoint, fail)
    family = ckpt.model["type"]
    want = "torch" if family == "encdec" else "hf"
    if target != want:
        fail(f"a {family} checkpoint exports with --to {want}")
    try:
        model = torch_encdec_model(ckpt) if family == "encdec" else hf_model(ckpt)
    except PortError as e:
        fail(f"cannot export {args.checkpoint}: {e}")
    tmp = out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        if family == "encdec":
            import torch

            torch.save(model.state_dict(), os.path.join(tmp, "model.pt"))
            with open(os.path.join(tmp, "config.yaml"), "w", encoding="utf-8") as fh:
                fh.write(ckpt.config_yaml)
        else:
            model.save_pretrained(tmp, safe_serialization=True)
        for name, text in tokenizer_files(ckpt).items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        os.makedirs(out, exist_ok=True)
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if ckpt.tokenizer == "tiktoken":
        print("note: the checkpoint's tiktoken rank file has no HF tokenizer files here; the "
              "tokenizer is not exported")
    print(f"exported {args.checkpoint} ({ph_checkpoint.model_summary(ckpt.model)}) to {out}: "
          + ", ".join(sorted(os.listdir(out))))


if __name__ == "__main__":
    main()
