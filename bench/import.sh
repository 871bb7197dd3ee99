#!/usr/bin/env bash
# Import throughput: a Django database of N users (default 100,000) made by
# the real Django (tests/interop/django_users.py), imported by the release
# binary into a new latch database, three times; prints users per second.
# Needs Python with tests/interop/requirements.txt (set PYTHON, or a venv is
# made in target/interop-venv as .ci/run does).
# Usage: bench/import.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
python=${PYTHON:-}
if [[ -z "$python" ]]; then
    venv=target/interop-venv
    [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
    python=$venv/bin/python
fi
cargo build --release --quiet --bin latch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TIMEFORMAT=%R
# Seconds a command took (its own output discarded; a failure stops the script).
seconds() { { time "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; } 2>&1; }
made=$(seconds sh -c "echo '{\"dir\": \"$work\", \"count\": $n}' | '$python' tests/interop/django_users.py")
echo "made a Django database of $n users in $made s (the real Django, bulk_create)"
for run in 1 2 3; do
    rm -f "$work"/latch.db*
    secs=$(seconds target/release/latch import django "$work/django.sqlite3" --db "$work/latch.db")
    echo "run $run: imported $n users in $secs s: $(python3 -c "print(round($n / $secs))") users/s"
done
echo "re-run (nothing new): $(seconds target/release/latch import django "$work/django.sqlite3" --db "$work/latch.db") s"
echo "the dumpdata export, nothing new: $(seconds target/release/latch import django "$work/dumpdata.json" --db "$work/latch.db") s"
