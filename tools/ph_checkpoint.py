"""polyhead checkpoints from Python: read one, and write one that polyhead loads (README
"Checkpoints (HDF5, format version 5)": the tensor and attribute checksums, the attribute types).

Interpreter: Debian's /usr/bin/python3 with python3-h5py, python3-numpy and python3-yaml.
"""
import os

import numpy as np
import yaml

FORMAT_VERSION = 5
META_KEYS = ("format_version", "step", "optimizer_steps", "consumed_samples", "seed", "config",
             "layout", "model", "tokenizer", "tokenizer_vocab", "tokenizer_merges", "best_eval")


def _terms(values):
    """term(i, values[i]) of a uint64 array, element-wise (README "The checksum")."""
    z = (np.arange(values.size, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ values
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def checksum(a):
    """The checksum of a float32 array (a dataset's attribute `checksum`)."""
    bits = np.ascontiguousarray(a, dtype="<f4").reshape(-1).view("<u4").astype(np.uint64)
    with np.errstate(over="ignore"):
        return int(_terms(bits).sum(dtype=np.uint64))


def meta_checksum(attrs):
    """The checksum of the root attributes of a version-5 file (`meta_checksum`)."""
    record = b""
    for key in META_KEYS:
        value = attrs[key]
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif not isinstance(value, bytes):
            value = str(int(value)).encode("ascii")
        record += key.encode("ascii") + b"\0" + value + b"\0"
    values = np.frombuffer(record, dtype=np.uint8).astype(np.uint64)
    with np.errstate(over="ignore"):
        return int(_terms(values).sum(dtype=np.uint64))


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


class Checkpoint:
    """A checkpoint in memory: params (name -> float32 array, the file's names and shapes), the
    resolved config (a dict; `config_yaml` its text) and the tokenizer attributes."""

    def __init__(self, params, config_yaml, tokenizer=("bytes", "", "")):
        self.params = params
        self.config_yaml = config_yaml
        self.config = yaml.safe_load(config_yaml) or {}
        self.tokenizer, self.tokenizer_vocab, self.tokenizer_merges = tokenizer

    @property
    def model(self):
        return self.config["model"]


def read(path, fail):
    """The checkpoint at path; every tensor's checksum is verified (fail(message) otherwise)."""
    import h5py

    if not os.path.isfile(path):
        fail(f"checkpoint {path} does not exist" if not os.path.exists(path)
             else f"{path} is not a checkpoint file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        fail(f"{path} is not an HDF5 file ({e})")
    with f:
        attrs = {k: _text(v) for k, v in f.attrs.items()}
        if "config" not in attrs or "model" not in f:
            fail(f"{path} is not a polyhead checkpoint (no config attribute or /model group)")
        if int(attrs.get("format_version", 0)) >= 3 and \
                meta_checksum(attrs) != int(attrs["meta_checksum"]):
            fail(f"checkpoint {path}: its attributes fail their checksum")
        params = {}
        for name, dset in f["model"].items():
            a = np.asarray(dset[()], dtype=np.float32)
            if checksum(a) != int(dset.attrs["checksum"]):
                fail(f"checkpoint {path}: tensor {name} fails its checksum (file corrupted)")
            params[name] = a
        tokenizer = (attrs.get("tokenizer", "bytes"), attrs.get("tokenizer_vocab", ""),
                     attrs.get("tokenizer_merges", ""))
    return Checkpoint(params, attrs["config"], tokenizer)


def model_summary(m):
    """The attribute `model` (trainer/checkpointing.cpp model_summary) of a model section."""
    d = m["d_model"]
    f = m["d_ff"] if m.get("d_ff", 0) > 0 else 4 * d
    t = m["type"]
    s = t
    if t == "encdec":
        enc = m.get("encoder_layers", 0) or m["n_layers"]
        dec = m.get("decoder_layers", 0) or m["n_layers"]
        s += f" L={enc}+{dec}"
    else:
        s += f" L={m['n_layers']}"
    s += f" d={d} H={m['n_heads']} f={f} V={m['vocab_size']}"
    if t == "encdec":
        s += f" S={m.get('src_seq_len', 0) or m['seq_len']}"
    s += f" T={m['seq_len']} pos={m['pos_encoding']} norm={m['norm']} act={m['activation']}"
    if t == "encdec":
        s += f" share={m['share_embeddings']}"
    else:
        s += f" tie={int(m.get('tie_embeddings', True))}"
    s += f" bias={int(m['bias'])} embed_scale={int(m['embed_scale'])}"
    if t == "bert":
        s += (f" types={m['type_vocab_size']} head={m['sentence_head']}"
              f" eps={float(np.float32(m['layer_norm_eps'])):g}")
    return s


def write(path, ckpt, seed=1337):
    """Writes ckpt as a fresh checkpoint (step 0, zero AdamW moments) at path, atomically: the
    file is written as path.tmp and renamed."""
    import h5py

    tmp = path + ".tmp"
    vlen = h5py.string_dtype("utf-8")
    attrs = {"format_version": FORMAT_VERSION, "step": 0, "optimizer_steps": 0,
             "consumed_samples": 0, "seed": seed, "config": ckpt.config_yaml,
             "layout": "dp=1 tp=1 world=1", "model": model_summary(ckpt.model),
             "tokenizer": ckpt.tokenizer, "tokenizer_vocab": ckpt.tokenizer_vocab,
             "tokenizer_merges": ckpt.tokenizer_merges, "best_eval": ""}
    types = {"format_version": "<i4", "step": "<i8", "optimizer_steps": "<i8",
             "consumed_samples": "<u8", "seed": "<u8"}
    try:
        with h5py.File(tmp, "w") as f:
            for key in META_KEYS:
                if key in types:
                    f.attrs.create(key, attrs[key], dtype=types[key])
                else:
                    f.attrs.create(key, attrs[key], dtype=vlen)
            f.attrs.create("meta_checksum", meta_checksum(attrs), dtype="<u8")
            for group in ("model", "optim/m", "optim/v"):
                g = f.require_group(group)
                for name, a in ckpt.params.items():
                    data = np.ascontiguousarray(a, dtype="<f4")
                    if group != "model":
                        data = np.zeros_like(data)
                    dset = g.create_dataset(name, data=data, dtype="<f4")
                    dset.attrs.create("checksum", checksum(data), dtype="<u8")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
