#!/usr/bin/env bash
# The Python peers of the tokenizer tests and benchmarks, in a virtual environment beside the
# sources (.venv, ignored by git): tiktoken, HF tokenizers and sacrebleu (the BLEU peer) from
# PyPI, over Debian's python3
# (its site packages stay visible, so python3-torch still serves the PyTorch parity test),
# tensorboard (its event reader checks polyhead's event files), and
# GPT-2's BPE ranks (whisper/assets/gpt2.tiktoken from the openai-whisper source package) as
# .venv/share/gpt2.tiktoken; and HF transformers for the BERT parity test (bench/hf_bert.py) in
# .venv/hf, a directory for PYTHONPATH under Debian's /usr/bin/python3 (python3-torch 1.13),
# apart from the venv because transformers 4.30 (a release that runs with torch 1.13 as Debian
# ships it) needs tokenizers 0.13, not the venv's 0.23. Idempotent; prints the
# interpreter's path last.
#   launch/pyenv.sh            create or complete the environment
# Tests and benchmarks find it by themselves (or through POLYHEAD_PYTHON,
# POLYHEAD_GPT2_TIKTOKEN and, for .venv/hf, POLYHEAD_HF_PATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=.venv
versions="tiktoken==0.14.0 tokenizers==0.23.3 sacrebleu==2.6.0"
whisper=openai-whisper==20250625
tensorboard=tensorboard==2.20.0

if [ ! -x "$venv/bin/python" ]; then
  dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed" || {
    source launch/deps.sh
    polyhead_ensure_packages python3-venv
  }
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" -c "import tiktoken, tokenizers, sacrebleu" 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check $versions
fi
# TensorBoard's own reader, for the test that reads polyhead's event files back.
if ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check $tensorboard
fi
# transformers and its pure-Python dependencies without their resolver (--no-deps: torch,
# numpy, pyyaml and h5py are Debian's), pinned.
hf="$venv/hf"
hf_versions="transformers==4.30.2 tokenizers==0.13.3 huggingface-hub==0.16.4 safetensors==0.3.3
  packaging==23.2 regex==2026.11.19 filelock==4.3.1 tqdm==4.70.1"
if ! PYTHONPATH="$hf" /usr/bin/python3 -c "import transformers" 2>/dev/null; then
  /usr/bin/python3 -m pip install -q --disable-pip-version-check --no-deps --upgrade \
    --target "$hf" $hf_versions
fi
if [ ! -s "$venv/share/gpt2.tiktoken" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: "$whisper" -d "$tmp"
  tar -xzf "$tmp"/openai_whisper-*.tar.gz -C "$tmp" --wildcards '*/whisper/assets/gpt2.tiktoken'
  mkdir -p "$venv/share"
  mv "$tmp"/openai_whisper-*/whisper/assets/gpt2.tiktoken "$venv/share/gpt2.tiktoken.part"
  mv "$venv/share/gpt2.tiktoken.part" "$venv/share/gpt2.tiktoken"
fi
echo "$PWD/$venv/bin/python"
