#!/usr/bin/env bash
# Builds the tokenizer benchmarks' corpus from real text installed on a Debian machine: every
# manual page under /usr/share/man (English and the translations present: German, French,
# Russian, Japanese, Chinese, ...), as roff source with the formatting requests (lines that
# start with '.' or "'") removed, in sorted path order; then the Debian licenses.
#   bench/tokenizer/make_corpus.sh OUT.txt [MIN_MB]
# Stops with a message when the result is smaller than MIN_MB (default 50) megabytes.
set -euo pipefail
out=${1:?usage: make_corpus.sh OUT.txt [MIN_MB]}
min_mb=${2:-50}
tmp="$out.tmp"
{
  find /usr/share/man -name '*.gz' -type f | LC_ALL=C sort | while read -r f; do
    zcat -- "$f" 2>/dev/null || true
  done | LC_ALL=C grep -av "^[.']" || true
  cat /usr/share/common-licenses/* 2>/dev/null || true
} >"$tmp"
bytes=$(stat -c %s "$tmp")
if [ "$bytes" -lt $((min_mb * 1000000)) ]; then
  rm -f "$tmp"
  echo "make_corpus.sh: only $bytes bytes of text found; need $min_mb MB (install more manual pages: apt-get install manpages manpages-dev)" >&2
  exit 1
fi
mv "$tmp" "$out"
echo "$out: $bytes bytes, $(LC_ALL=C grep -c '' "$out") lines"
