#!/usr/bin/env bash
# The benchmark: builds latch in release mode and prints one table (about 2 minutes).
# Usage: bench/run.sh [--seconds N]
#        bench/run.sh --tls [--seconds N]   HTTPS: profile, refresh and handshakes (about 1 minute)
#        bench/run.sh --postgres [--seconds N]   SQLite beside PostgreSQL, and two instances (about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [[ "${1:-}" == --tls ]]; then
    shift
    cargo build --release --quiet --bin latch --example bare_tls
    exec python3 bench/bench.py tls "$@"
fi
if [[ "${1:-}" == --postgres ]]; then
    shift
    command -v pg_virtualenv >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql postgresql-common; }
    cargo build --release --quiet --bin latch --example bare_warp --example scrypt_time
    # A throwaway cluster on loopback; pg_virtualenv turns fsync off for
    # speed, which a database that must not lose commits cannot: back on.
    exec pg_virtualenv -t -o fsync=on bash -c '
        export LATCH_BENCH_DATABASE_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE?sslmode=disable"
        exec python3 bench/bench.py postgres "$@"' bash "$@"
fi
cargo build --release --quiet --bin latch --example bare_warp --example scrypt_time --example reference
exec python3 bench/bench.py bench "$@"
