"""polyhead's GPT and BERT as HF transformers' GPT2LMHeadModel and BertForPreTraining /
BertForMaskedLM: the configs and parameter names both ways, shared by tools/export.py,
tools/import.py and the parity peer bench/hf_bert.py.

Interpreter: Debian's /usr/bin/python3 with python3-torch (1.13), python3-numpy, python3-yaml,
and transformers 4.30.2 + safetensors 0.3.3 on PYTHONPATH (.venv/hf, see launch/pyenv.sh).

A polyhead option that the HF class cannot express raises PortError naming it; so does an HF
config that polyhead cannot hold.
"""
import numpy as np


class PortError(Exception):
    """One message for the user: an option or a shape the other side cannot hold."""


# polyhead model.activation -> HF's activation name (HF "gelu" is the exact erf form,
# "gelu_new" the tanh approximation of GPT-2), and back.
HF_ACT = {"gelu_erf": "gelu", "gelu": "gelu_new", "relu": "relu"}
FROM_HF_ACT = {v: k for k, v in HF_ACT.items()}
FROM_HF_ACT["gelu_pytorch_tanh"] = "gelu"


def ffn_width(m):
    return m["d_ff"] if m.get("d_ff", 0) > 0 else 4 * m["d_model"]


def _dropout(m):
    return m.get("dropout") or {"embed": 0.0, "attn": 0.0, "resid": 0.0}


def _common_refusals(m, family):
    """Options that neither HF's GPT-2 nor its BERT has."""
    if not m.get("bias", True):
        raise PortError(f"model.bias false: HF's {family} always has biases")
    if m.get("pos_encoding", "learned") != "learned":
        raise PortError(f"model.pos_encoding {m['pos_encoding']}: HF's {family} learns its "
                        "positions")
    if m.get("embed_scale", False):
        raise PortError(f"model.embed_scale true: HF's {family} does not scale its embeddings")
    if m["activation"] not in HF_ACT:
        raise PortError(f"model.activation {m['activation']} has no HF counterpart")


# ---------------------------------------------------------------------------------------- GPT

def gpt_config(m):
    """The GPT2Config of polyhead's gpt model section m."""
    from transformers import GPT2Config

    if m["type"] != "gpt":
        raise PortError(f"the model is {m['type']}, not gpt")
    if m["norm"] != "pre":
        raise PortError(f"model.norm {m['norm']}: HF's GPT-2 is pre-LN only")
    _common_refusals(m, "GPT-2")
    p = _dropout(m)
    return GPT2Config(
        vocab_size=m["vocab_size"], n_positions=m["seq_len"], n_embd=m["d_model"],
        n_layer=m["n_layers"], n_head=m["n_heads"], n_inner=ffn_width(m),
        activation_function=HF_ACT[m["activation"]], resid_pdrop=p["resid"],
        embd_pdrop=p["embed"], attn_pdrop=p["attn"],
        layer_norm_epsilon=float(m.get("layer_norm_eps", 1e-5)),
        initializer_range=float(m.get("init_std", 0.02)),
        tie_word_embeddings=bool(m["tie_embeddings"]), architectures=["GPT2LMHeadModel"])


def gpt_to_hf(params, m):
    """HF GPT2LMHeadModel state (name -> array) of polyhead's GPT tensors. HF's Conv1D holds
    [in, out]: polyhead's [out, in] matrices are transposed, q, k, v concatenated."""
    out = {"transformer.wte.weight": params["wte"], "transformer.wpe.weight": params["wpe"],
           "transformer.ln_f.weight": params["lnf.weight"],
           "transformer.ln_f.bias": params["lnf.bias"]}
    for i in range(m["n_layers"]):
        p, q = f"h.{i}.", f"transformer.h.{i}."
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            for x in ("weight", "bias"):
                out[f"{q}{theirs}.{x}"] = params[f"{p}{ours}.{x}"]
        out[q + "attn.c_attn.weight"] = np.concatenate(
            [params[f"{p}attn.{x}.weight"] for x in "qkv"], axis=0).T
        out[q + "attn.c_attn.bias"] = np.concatenate([params[f"{p}attn.{x}.bias"] for x in "qkv"])
        for ours, theirs in (("attn.proj", "attn.c_proj"), ("mlp.fc", "mlp.c_fc"),
                             ("mlp.proj", "mlp.c_proj")):
            out[f"{q}{theirs}.weight"] = params[f"{p}{ours}.weight"].T
            out[f"{q}{theirs}.bias"] = params[f"{p}{ours}.bias"]
    if not m["tie_embeddings"]:
        out["lm_head.weight"] = params["lm_head.weight"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def gpt_model_section(c):
    """polyhead's gpt model section of an HF GPT-2 config (a dict of config.json)."""
    for key, bad in (("scale_attn_by_inverse_layer_idx", True), ("scale_attn_weights", False),
                     ("add_cross_attention", True)):
        if c.get(key, not bad) == bad:
            raise PortError(f"{key} {str(bad).lower()}: polyhead's GPT has no such attention")
    act = c.get("activation_function", "gelu_new")
    if act not in FROM_HF_ACT:
        raise PortError(f"activation_function {act}: polyhead has gelu (tanh), gelu_erf and relu")
    d, H = c.get("n_embd", 768), c.get("n_head", 12)
    return {"type": "gpt", "vocab_size": c.get("vocab_size", 50257),
            "n_layers": c.get("n_layer", 12), "d_model": d, "n_heads": H,
            "d_ff": 0 if (c.get("n_inner") or 4 * d) == 4 * d else c["n_inner"],
            "seq_len": c.get("n_positions", 1024),
            "pos_encoding": "learned", "norm": "pre", "activation": FROM_HF_ACT[act],
            "embed_scale": False, "tie_embeddings": bool(c.get("tie_word_embeddings", True)),
            "bias": True,
            "dropout": {"embed": c.get("embd_pdrop", 0.1), "attn": c.get("attn_pdrop", 0.1),
                        "resid": c.get("resid_pdrop", 0.1)},
            "init_std": c.get("initializer_range", 0.02),
            "layer_norm_eps": c.get("layer_norm_epsilon", 1e-5)}


def gpt_from_hf(state, m):
    """polyhead's GPT tensors from an HF GPT-2 state (GPT2LMHeadModel's or GPT2Model's names)."""
    take = _Taker(state, prefix="transformer.")
    d, f = m["d_model"], ffn_width(m)
    out = {"wte": take("wte.weight", (m["vocab_size"], d)),
           "wpe": take("wpe.weight", (m["seq_len"], d))}
    for i in range(m["n_layers"]):
        p, q = f"h.{i}.", f"h.{i}."
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            for x in ("weight", "bias"):
                out[f"{p}{ours}.{x}"] = take(f"{q}{theirs}.{x}", (d,))
        w = take(q + "attn.c_attn.weight", (d, 3 * d)).T
        b = take(q + "attn.c_attn.bias", (3 * d,))
        for j, x in enumerate("qkv"):
            out[f"{p}attn.{x}.weight"] = w[j * d:(j + 1) * d]
            out[f"{p}attn.{x}.bias"] = b[j * d:(j + 1) * d]
        for ours, theirs, shape in (("attn.proj", "attn.c_proj", (d, d)),
                                    ("mlp.fc", "mlp.c_fc", (d, f)),
                                    ("mlp.proj", "mlp.c_proj", (f, d))):
            out[f"{p}{ours}.weight"] = take(f"{q}{theirs}.weight", shape).T
            out[f"{p}{ours}.bias"] = take(f"{q}{theirs}.bias", (shape[1],))
    out["lnf.weight"] = take("ln_f.weight", (d,))
    out["lnf.bias"] = take("ln_f.bias", (d,))
    if m["tie_embeddings"]:
        take.ignore("lm_head.weight")
    else:
        out["lm_head.weight"] = take("lm_head.weight", (m["vocab_size"], d), prefixed=False)
    # Causal-mask buffers that older GPT-2 files carry.
    take.ignore_suffixes((".attn.bias", ".attn.masked_bias"))
    take.finish()
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


# --------------------------------------------------------------------------------------- BERT

def bert_config(m, dropout=None):
    """The BertConfig of polyhead's bert model section m."""
    from transformers import BertConfig

    if m["type"] != "bert":
        raise PortError(f"the model is {m['type']}, not bert")
    if m["norm"] != "post":
        raise PortError(f"model.norm {m['norm']}: HF's BERT is post-LN only (no pre-LN "
                        "BertModel)")
    _common_refusals(m, "BERT")
    p = dropout or {"attn": 0.0, "resid": 0.0}
    return BertConfig(
        vocab_size=m["vocab_size"], hidden_size=m["d_model"], num_hidden_layers=m["n_layers"],
        num_attention_heads=m["n_heads"], intermediate_size=ffn_width(m),
        hidden_act=HF_ACT[m["activation"]], hidden_dropout_prob=p["resid"],
        attention_probs_dropout_prob=p["attn"], max_position_embeddings=m["seq_len"],
        type_vocab_size=m["type_vocab_size"], initializer_range=float(m.get("init_std", 0.02)),
        layer_norm_eps=float(m["layer_norm_eps"]),  # PyYAML reads "1e-12" as a string
        architectures=["BertForMaskedLM" if m["sentence_head"] == "none"
                       else "BertForPreTraining"])


def bert_name_map(m):
    """polyhead name -> HF parameter name, for every parameter of the BERT model."""
    out = {"wte": "bert.embeddings.word_embeddings.weight",
           "wpe": "bert.embeddings.position_embeddings.weight",
           "wtt": "bert.embeddings.token_type_embeddings.weight",
           "mlm.bias": "cls.predictions.bias"}
    modules = {"emb_ln": "bert.embeddings.LayerNorm",
               "mlm.dense": "cls.predictions.transform.dense",
               "mlm.ln": "cls.predictions.transform.LayerNorm"}
    for i in range(m["n_layers"]):
        p, q = f"h.{i}.", f"bert.encoder.layer.{i}."
        modules.update({p + "attn.q": q + "attention.self.query",
                        p + "attn.k": q + "attention.self.key",
                        p + "attn.v": q + "attention.self.value",
                        p + "attn.proj": q + "attention.output.dense",
                        p + "ln1": q + "attention.output.LayerNorm",
                        p + "mlp.fc": q + "intermediate.dense",
                        p + "mlp.proj": q + "output.dense",
                        p + "ln2": q + "output.LayerNorm"})
    if m["sentence_head"] != "none":
        modules.update({"pooler": "bert.pooler.dense", "cls": "cls.seq_relationship"})
    for ours, theirs in modules.items():
        for x in ("weight", "bias"):
            out[f"{ours}.{x}"] = f"{theirs}.{x}"
    return out


def bert_model_section(c, state):
    """polyhead's bert model section of an HF BERT config (config.json as a dict); the sentence
    head is nsp when the weights hold cls.seq_relationship."""
    if c.get("position_embedding_type", "absolute") != "absolute":
        raise PortError(f"position_embedding_type {c['position_embedding_type']}: polyhead's "
                        "BERT has absolute learned positions only")
    if c.get("is_decoder") or c.get("add_cross_attention"):
        raise PortError("is_decoder / add_cross_attention: polyhead's BERT is an encoder only")
    act = c.get("hidden_act", "gelu")
    if act not in FROM_HF_ACT:
        raise PortError(f"hidden_act {act}: polyhead has gelu (tanh), gelu_erf and relu")
    d = c.get("hidden_size", 768)
    head = "nsp" if any(k.endswith("cls.seq_relationship.weight") for k in state) else "none"
    return {"type": "bert", "vocab_size": c.get("vocab_size", 30522),
            "n_layers": c.get("num_hidden_layers", 12), "d_model": d,
            "n_heads": c.get("num_attention_heads", 12),
            "d_ff": 0 if c.get("intermediate_size", 4 * d) == 4 * d else c["intermediate_size"],
            "seq_len": c.get("max_position_embeddings", 512), "pos_encoding": "learned",
            "norm": "post", "activation": FROM_HF_ACT[act], "embed_scale": False, "bias": True,
            "dropout": {"embed": c.get("hidden_dropout_prob", 0.1),
                        "attn": c.get("attention_probs_dropout_prob", 0.1),
                        "resid": c.get("hidden_dropout_prob", 0.1)},
            "init_std": c.get("initializer_range", 0.02),
            "layer_norm_eps": c.get("layer_norm_eps", 1e-12),
            "type_vocab_size": c.get("type_vocab_size", 2), "sentence_head": head}


def bert_from_hf(state, m):
    """polyhead's BERT tensors from an HF BertForMaskedLM / BertForPreTraining state."""
    take = _Taker(state, prefix="")
    shapes = bert_shapes(m)
    out = {ours: take(theirs, shapes[ours]) for ours, theirs in bert_name_map(m).items()}
    # The decoder is tied to the word embeddings (its bias is cls.predictions.bias); HF's
    # bookkeeping buffers; a pooler without a sentence head (BertForMaskedLM has none).
    take.ignore("cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
                "bert.embeddings.position_ids", "bert.embeddings.token_type_ids")
    if m["sentence_head"] == "none":
        take.ignore("bert.pooler.dense.weight", "bert.pooler.dense.bias")
    take.finish()
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def bert_shapes(m):
    V, d, T, f = m["vocab_size"], m["d_model"], m["seq_len"], ffn_width(m)
    shapes = {"wte": (V, d), "wpe": (T, d), "wtt": (m["type_vocab_size"], d), "mlm.bias": (V,),
              "emb_ln.weight": (d,), "emb_ln.bias": (d,), "mlm.dense.weight": (d, d),
              "mlm.dense.bias": (d,), "mlm.ln.weight": (d,), "mlm.ln.bias": (d,),
              "pooler.weight": (d, d), "pooler.bias": (d,), "cls.weight": (2, d),
              "cls.bias": (2,)}
    for i in range(m["n_layers"]):
        p = f"h.{i}."
        for x in ("q", "k", "v", "proj"):
            shapes[f"{p}attn.{x}.weight"], shapes[f"{p}attn.{x}.bias"] = (d, d), (d,)
        for x in ("ln1", "ln2"):
            shapes[f"{p}{x}.weight"], shapes[f"{p}{x}.bias"] = (d,), (d,)
        shapes[p + "mlp.fc.weight"], shapes[p + "mlp.fc.bias"] = (f, d), (f,)
        shapes[p + "mlp.proj.weight"], shapes[p + "mlp.proj.bias"] = (d, f), (d,)
    return shapes


def check_shape(m):
    """Refuses a model section polyhead cannot hold (io/config_schema.cpp's ranges)."""
    for key in ("vocab_size", "n_layers", "d_model", "n_heads", "seq_len"):
        if int(m[key]) < 1:
            raise PortError(f"{key} {m[key]}: polyhead needs at least 1")
    if m["n_layers"] > 4096:
        raise PortError(f"{m['n_layers']} layers: polyhead holds at most 4096")
    if m["d_model"] % m["n_heads"]:
        raise PortError(f"the width {m['d_model']} is not a multiple of the {m['n_heads']} "
                        "heads: polyhead's heads split d_model evenly")


class _Taker:
    """Takes tensors out of an HF state by name (with an optional prefix that GPT2Model's files
    lack), checks their shapes, and refuses a state with tensors left over."""

    def __init__(self, state, prefix):
        self.state, self.prefix, self.used = state, prefix, set()

    def _key(self, name, prefixed):
        if prefixed and self.prefix + name in self.state:
            return self.prefix + name
        return name

    def __call__(self, name, shape, prefixed=True):
        key = self._key(name, prefixed)
        if key not in self.state:
            raise PortError(f"the weights have no {self.prefix if prefixed else ''}{name}")
        a = np.asarray(self.state[key], dtype=np.float32)
        if tuple(a.shape) != tuple(shape):
            raise PortError(f"{key} has shape {tuple(a.shape)}, the config says {tuple(shape)}")
        self.used.add(key)
        return a

    def ignore(self, *names):
        for name in names:
            self.used.add(self._key(name, True))

    def ignore_suffixes(self, suffixes):
        self.used.update(k for k in self.state if k.endswith(suffixes))

    def finish(self):
        left = sorted(set(self.state) - self.used)
        if left:
            raise PortError("weights that polyhead's model has no place for: " + ", ".join(left))
