#!/usr/bin/env bash
# The soak test: about a minute of mixed load against latch; fails on any
# error or on RSS growing more than 10% between the first and last quarter.
# Usage: bench/soak.sh [--latch PATH] [--seconds N]   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } || {
    echo "soak: wrk is not installed and could not be installed" >&2
    exit 1
}
if [[ " $* " != *" --latch "* ]]; then
    cargo build --release --quiet --bin latch
fi
exec python3 bench/bench.py soak --seconds 60 "$@"
