#!/usr/bin/env bash
# The benchmark: builds latch in release mode and prints one table (about 2 minutes).
# Usage: bench/run.sh [--seconds N]
#        bench/run.sh --tls [--seconds N]   HTTPS: profile, refresh and handshakes (about 1 minute)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [[ "${1:-}" == --tls ]]; then
    shift
    cargo build --release --quiet --bin latch --example bare_tls
    exec python3 bench/bench.py tls "$@"
fi
cargo build --release --quiet --bin latch --example bare_warp --example scrypt_time --example reference
exec python3 bench/bench.py bench "$@"
