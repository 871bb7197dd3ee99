#!/usr/bin/env bash
# Schemathesis against a live latch, driven by latch's own OpenAPI document
# (GET /api/openapi.json): every operation with generated valid and invalid
# data (examples, coverage and fuzzing phases), then chains of calls along
# the document's links (register -> login -> refresh / profile with the
# access token as Bearer ...). Every answer must be no 5xx, and have a
# status, content type, headers and body the document lists. Under two
# minutes on two cores.
#
#   tests/schemathesis/run.sh [--latch target/debug/latch] [--venv DIR] [st run options...]
#
# The latch is a throwaway one (serve --ephemeral: temporary database, no
# limits, cheap hashing), started here in a temporary folder (so that
# neither ./auth.toml nor its mail files are involved) and stopped at the
# end. Schemathesis comes from tests/schemathesis/requirements.txt, in its
# own virtualenv (target/schemathesis-venv), installed if missing. Extra
# options go to `st run` (e.g. --seed N to replay a run, whose seed
# Schemathesis prints).
set -euo pipefail
cd "$(dirname "$0")/../.."

latch=target/debug/latch
venv=target/schemathesis-venv
while [[ $# -gt 0 ]]; do
    case $1 in
        --latch) latch=$2; shift 2 ;;
        --venv) venv=$2; shift 2 ;;
        *) break ;;
    esac
done
latch=$(realpath "$latch")
venv=$(realpath -m "$venv")

if [[ ! -x $venv/bin/st ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt
fi

work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$work" && exec "$latch" serve --ephemeral --bind 127.0.0.1:0 >latch.log 2>&1) &
pid=$!
url=
for _ in $(seq 100); do
    url=$(sed -n '1s/^listening on //p' "$work/latch.log")
    [[ -n $url ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/latch.log" >&2; exit 1; }
    sleep 0.1
done
[[ -n $url ]] || { echo "latch did not start" >&2; cat "$work/latch.log" >&2; exit 1; }

# The document is valid OpenAPI 3.1 (the Rust tests parse it too; this
# checks it against the specification's own schema).
"$venv/bin/python" - "$url/api/openapi.json" <<'EOF'
import json, sys, urllib.request
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    document = json.load(response)
assert document["openapi"].startswith("3.1."), document["openapi"]
validate(document, cls=OpenAPIV31SpecValidator)
print(f"{sys.argv[1]}: valid OpenAPI {document['openapi']}")
EOF

start=$SECONDS
status=0
(
    cd "$work"
    # Bounded: a stuck run fails CI instead of holding it for hours.
    timeout 600 "$venv/bin/st" run "$url/api/openapi.json" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing,stateful \
        --mode all \
        --generation-database none \
        --request-timeout 10 \
        --max-examples 300 \
        --no-color \
        "$@"
) || status=$?
echo "schemathesis: exit $status after $((SECONDS - start)) s"
# latch itself must have come through it: alive, and no panic in its log.
if ! kill -0 "$pid" 2>/dev/null || grep -q "panicked" "$work/latch.log"; then
    echo "latch died or panicked under the run" >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    echo "--- the end of latch's log:" >&2
    tail -n 40 "$work/latch.log" >&2
fi
exit $status
