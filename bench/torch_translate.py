"""Beam search in PyTorch over a polyhead encoder-decoder checkpoint: the peer of `polyhead
translate` (trainer/beam_search.h) for speed and for agreement. Used by
`torch_encdec.py --bench-translate`; not a program of its own.

Interpreter: Debian's /usr/bin/python3 with python3-torch (1.13), python3-h5py, python3-numpy
and python3-yaml, as torch_encdec.py.

The decoder is incremental, as polyhead's (model/encdec_decoder.h): per batch of sentences the
encoder runs once, every decoder layer's cross-attention keys and values are computed once per
sentence (not per hypothesis: the hypotheses of a sentence attend to the same [S, d] keys and
values), and each decoder layer keeps its self-attention keys and values per hypothesis,
reordered by the hypotheses' parents at every step, so a step costs one position. The step is
written with the weights of the torch modules (nn.TransformerDecoderLayer has no cache): the
in_proj weights of nn.MultiheadAttention split into q, k and v, softmax attention by hand, the
layers' LayerNorms and FFN modules. The encoder is the module itself in eval mode under
torch.inference_mode() (torch may take its fused inference path there). Sentences whose
search is over leave the batch (their rows are dropped from the caches), as fairseq does;
polyhead keeps stepping them.

The search is polyhead's, rule for rule: every live hypothesis is extended by every token but
bos and pad; candidates rank by the raw sum of log-probabilities (ties: lower token id, then
lower parent rank); an eos among the first `beam` ranks finishes a hypothesis, the first `beam`
other candidates stay live; finished hypotheses rank by logprob / length^A (length counting the
eos); a sentence ends at its maximum length min(floor(a * src + b), T - 1) output tokens (src
counting the source's eos; eos is then forced), when nothing is live, or when no live hypothesis
can still beat the n-th best finished one; with beam 1 at the first eos. Scores accumulate in
float64 from float32 log-probabilities, as polyhead's.

The tokenizer: a checkpoint's byte-level BPE (vocab.json + merges.txt, GPT-2's merge rule) on
ASCII text (GPT-2's pre-tokenizer written for ASCII, since Debian's python has no `regex`
module); other text or tokenizer kinds are refused.
"""
import json
import math
import os
import re
import sys

import torch
import torch.nn.functional as F

# GPT-2's bytes-to-unicode table (byte -> the character that stands for it), from the tokenizer
# tests' converter (standard library only).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "tokenizer"))
from tiktoken_to_hf import bytes_to_unicode  # noqa: E402

NEG_INF = float("-inf")

# GPT-2's pre-tokenizer pattern with its Unicode classes restricted to ASCII.
ASCII_PIECES = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")


class PeerTokenizer:
    """Encodes ASCII text and decodes ids as polyhead's BPE tokenizer (io/tokenizer.h)."""

    def __init__(self, kind, vocab_text, merges_text):
        if kind != "bpe":
            raise SystemExit(f"torch_translate: tokenizer kind '{kind}' is not supported (bpe only)")
        self.vocab = json.loads(vocab_text)
        self.inverse = {i: s for s, i in self.vocab.items()}
        self.ranks = {}
        for line in merges_text.splitlines():
            if line.startswith("#version") or not line.strip():
                continue
            a, b = line.split(" ")
            self.ranks[(a, b)] = len(self.ranks)
        self.to_char = bytes_to_unicode()
        self.to_byte = {c: b for b, c in self.to_char.items()}
        self.cache = {}

    def bpe(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        parts = list(piece)
        while len(parts) > 1:
            pairs = [(self.ranks.get((parts[i], parts[i + 1]), math.inf), i)
                     for i in range(len(parts) - 1)]
            rank, at = min(pairs)  # the lowest-ranked pair, merged wherever it occurs
            if rank == math.inf:
                break
            first, second = parts[at], parts[at + 1]
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = [self.vocab[p] for p in parts]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        if not text.isascii():
            raise SystemExit("torch_translate: the peer's tokenizer handles ASCII text only")
        ids = []
        for piece in ASCII_PIECES.findall(text):
            ids.extend(self.bpe("".join(self.to_char[b] for b in piece.encode())))
        return ids

    def decode(self, ids):
        data = bytes(self.to_byte[c] for i in ids for c in self.inverse[i])
        return data.decode("utf-8", errors="replace")


class IncrementalDecoder:
    """One position per hypothesis per step over an EncDec (torch_encdec.py) in eval mode."""

    def __init__(self, model):
        self.model = model
        m = model.m
        self.d, self.H = m["d_model"], m["n_heads"]
        self.hd = self.d // self.H
        self.pre = m["norm"] == "pre"
        self.layers = list(model.decoder.layers)
        self.final_norm = model.decoder.norm
        self.head = model.lm_head.weight if model.lm_head is not None else model.dec_wte.weight
        self.V = m["vocab_size"]

    def start(self, source, lengths):
        """source [n, S] (padding: any id), lengths [n]: encodes and caches the cross K/V."""
        model, d, H, hd = self.model, self.d, self.H, self.hd
        n, S = source.shape
        pad = torch.arange(S)[None, :] >= lengths[:, None]
        memory = model.encoder(model.enc_embed(source), src_key_padding_mask=pad)
        self.cross = []
        for layer in self.layers:
            attn = layer.multihead_attn
            kv = F.linear(memory, attn.in_proj_weight[d:], attn.in_proj_bias[d:])
            k, v = kv.view(n, S, 2, H, hd).permute(2, 0, 3, 1, 4)  # [n, H, S, hd] each
            self.cross.append((k, v))
        self.cross_mask = torch.zeros(n, 1, 1, S).masked_fill_(pad[:, None, None, :], NEG_INF)
        self.self_kv = [None] * len(self.layers)
        self.pos = 0

    def keep_sources(self, keep):
        """Drops the sentences not in `keep` (indices, in their new order) from the batch."""
        self.cross = [(k.index_select(0, keep), v.index_select(0, keep)) for k, v in self.cross]
        self.cross_mask = self.cross_mask.index_select(0, keep)

    def _self_attention(self, i, layer, x, order):
        d, H, hd = self.d, self.H, self.hd
        M = x.shape[0]
        attn = layer.self_attn
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).view(M, 3, H, 1, hd).unbind(1)
        if self.self_kv[i] is not None:
            pk, pv = self.self_kv[i]
            if order is not None:
                pk, pv = pk.index_select(0, order), pv.index_select(0, order)
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
        self.self_kv[i] = (k, v)
        p = torch.softmax(torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd), dim=-1)
        y = torch.matmul(p, v).view(M, d)  # [M, H, 1, hd]
        return F.linear(y, attn.out_proj.weight, attn.out_proj.bias)

    def _cross_attention(self, i, layer, x, beams):
        d, H, hd = self.d, self.H, self.hd
        M = x.shape[0]
        n = M // beams
        attn = layer.multihead_attn
        q = F.linear(x, attn.in_proj_weight[:d], attn.in_proj_bias[:d])
        q = q.view(n, beams, H, hd).transpose(1, 2)  # [n, H, beams, hd]
        k, v = self.cross[i]
        s = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd) + self.cross_mask
        y = torch.matmul(torch.softmax(s, dim=-1), v)  # [n, H, beams, hd]
        y = y.transpose(1, 2).reshape(M, d)
        return F.linear(y, attn.out_proj.weight, attn.out_proj.bias)

    def step(self, tokens, order, beams):
        """tokens [M] (M = sentences * beams), order [M] (row of the previous step each row
        continues; None at position 0 or when unchanged): log-probabilities [M, V], float32."""
        model = self.model
        emb = model.dec_embed
        pos = emb.wpe[self.pos] if emb.wpe is not None else emb.table[self.pos]
        x = emb.wte(tokens) * emb.scale + pos
        for i, layer in enumerate(self.layers):
            ff = lambda h: layer.linear2(layer.activation(layer.linear1(h)))  # noqa: E731
            if self.pre:
                x = x + self._self_attention(i, layer, layer.norm1(x), order)
                x = x + self._cross_attention(i, layer, layer.norm2(x), beams)
                x = x + ff(layer.norm3(x))
            else:
                x = layer.norm1(x + self._self_attention(i, layer, x, order))
                x = layer.norm2(x + self._cross_attention(i, layer, x, beams))
                x = layer.norm3(x + ff(x))
        if self.final_norm is not None:
            x = self.final_norm(x)
        self.pos += 1
        return torch.log_softmax(F.linear(x, self.head)[:, :self.V], dim=-1)


class Source:
    """The search state of one sentence (trainer/beam_search.cpp's SourceState)."""

    def __init__(self, max_len):
        self.live = [([], 0.0)]  # (tokens, raw score), best first; live[r] is slot r
        self.pool = []           # (score, order, tokens, logprob), best first, at most beam
        self.finished = 0
        self.max_len = max_len
        self.done = False


def max_output_length(a, b, src, T):
    return int(min(math.floor(a * src + b), T - 1))


def search_over(s, t, beam, n_best, A):
    if not s.live or (beam == 1 and s.finished >= 1):
        return True
    if len(s.pool) < n_best:
        return False
    denom = max(math.pow(t + 2, A), math.pow(s.max_len + 1, A))
    return s.live[0][1] / denom <= s.pool[n_best - 1][0]


def add_finished(s, tokens, raw, A, beam):
    score = raw / math.pow(len(tokens) + 1, A)
    s.pool.append((score, s.finished, tokens, raw))
    s.finished += 1
    s.pool.sort(key=lambda f: (-f[0], f[1]))
    del s.pool[beam:]


def search_group(dec, sources, opt):
    """The best hypothesis (token ids, score) of each of `sources` (id lists ending with eos)."""
    beam, A, V = opt["beam"], opt["length_penalty"], dec.V
    bos, eos, pad = opt["bos"], opt["eos"], opt["pad"]
    n = len(sources)
    S = max(len(x) for x in sources)
    src = torch.zeros(n, S, dtype=torch.long)
    for j, x in enumerate(sources):
        src[j, :len(x)] = torch.tensor(x)
    lengths = torch.tensor([len(x) for x in sources])
    T = dec.model.m["seq_len"]
    st = [Source(max_output_length(opt["max_len_a"], opt["max_len_b"], len(x), T))
          for x in sources]
    dec.start(src, lengths)
    active = list(range(n))  # the sentences in the decoder's batch, in its order
    tokens = torch.full((n * beam,), bos, dtype=torch.long)
    order = None
    banned = [t for t in (bos, pad) if t != eos]
    for t in range(T):
        lp = dec.step(tokens, order, beam).view(len(active), beam, V).double()
        if banned:
            lp[:, :, banned] = NEG_INF
        live = torch.tensor([[score for _, score in st[j].live] + [NEG_INF] * (beam - len(st[j].live))
                             for j in active], dtype=torch.float64)
        total = (live[:, :, None] + lp).view(len(active), beam * V)
        k = min(2 * beam, beam * V)
        top_v, top_i = total.topk(k, dim=1)
        top_v, top_i = top_v.tolist(), top_i.tolist()
        lp_eos = lp[:, :, eos].tolist()
        next_tokens, next_order, keep = [], [], []
        for a, j in enumerate(active):
            s = st[j]
            if t >= s.max_len:  # eos forced
                cands = [(score + lp_eos[a][r], eos, r) for r, (_, score) in enumerate(s.live)]
            else:
                cands = [(v, i % V, i // V) for v, i in zip(top_v[a], top_i[a])
                         if i // V < len(s.live)]
            cands.sort(key=lambda c: (-c[0], c[1], c[2]))
            nxt = []
            for rank, (score, tok, parent) in enumerate(cands):
                ptoks = s.live[parent][0]
                if tok == eos:
                    if rank < beam:
                        add_finished(s, ptoks, score, A, beam)
                elif len(nxt) < beam:
                    nxt.append((ptoks + [tok], score, parent))
                if rank + 1 >= beam and len(nxt) == beam:
                    break
            s.live = [(toks, score) for toks, score, _ in nxt]
            s.done = search_over(s, t, beam, opt["n_best"], A)
            if s.done:
                continue
            keep.append(a)
            for r in range(beam):  # idle slots read pad and keep their own row
                next_tokens.append(nxt[r][0][-1] if r < len(nxt) else pad)
                next_order.append(a * beam + (nxt[r][2] if r < len(nxt) else r))
        if not keep:
            break
        if len(keep) < len(active):
            dec.keep_sources(torch.tensor(keep))
            active = [active[a] for a in keep]
        tokens = torch.tensor(next_tokens)
        order = torch.tensor(next_order)
    return [(s.pool[0][2], s.pool[0][0]) for s in st]


def translate(model, tokenizer, lines, opt, batch):
    """Best translations (text) and their scores of `lines`, `batch` sentences at a time."""
    S = model.m["src_seq_len"] if model.m["src_seq_len"] > 0 else model.m["seq_len"]
    dec = IncrementalDecoder(model)
    texts, scores = [], []
    for first in range(0, len(lines), batch):
        sources = [tokenizer.encode(line)[:S - 1] + [opt["eos"]]
                   for line in lines[first:first + batch]]
        for ids, score in search_group(dec, sources, opt):
            texts.append(tokenizer.decode(ids))
            scores.append(score)
    return texts, scores
