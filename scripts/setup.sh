#!/usr/bin/env bash
# Installs what building and testing Sluice needs on Debian/Ubuntu:
# Mosquitto (tests talk to a real broker on loopback) and a C toolchain.
# Safe to run repeatedly; installs only what is missing.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  echo "setup: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  cat >&2 <<'MSG'
setup: cargo was not found. Sluice needs Rust 1.94 or newer (edition 2024).
Install it with rustup (https://rustup.rs), open a new shell, and run this again.
MSG
  exit 1
fi
