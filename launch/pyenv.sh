#!/usr/bin/env bash
# The Python peers of the tokenizer tests and benchmarks, in a virtual environment beside the
# sources (.venv, ignored by git): tiktoken, HF tokenizers and sacrebleu (the BLEU peer) from
# PyPI, over Debian's python3
# (its site packages stay visible, so python3-torch still serves the PyTorch parity test), and
# GPT-2's BPE ranks (whisper/assets/gpt2.tiktoken from the openai-whisper source package) as
# .venv/share/gpt2.tiktoken. Idempotent; prints the interpreter's path last.
#   launch/pyenv.sh            create or complete the environment
# Tests and benchmarks find it by themselves (or through POLYHEAD_PYTHON and
# POLYHEAD_GPT2_TIKTOKEN).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=.venv
versions="tiktoken==0.14.0 tokenizers==0.23.3 sacrebleu==2.6.0"
whisper=openai-whisper==20250625

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
