#!/usr/bin/env python3
"""Instructions per request, counted rather than timed: a latch binary runs
under valgrind's callgrind (`--ephemeral`), answers N and then 3N requests of
one kind on one keep-alive connection from this script, and the difference
of the two totals divided by 2N is what one request costs, start-up and
shutdown cancelled out. On a shared, noisy machine, where requests/s and CPU
time move by 10-20% between runs, this moves by about 1%: use it to compare
two builds' hot paths.

Usage: bench/instructions.py BINARY profile|refresh [N] [NAME=VALUE ...]
(NAME=VALUE: environment for latch, e.g. LATCH_METRICS_BIND=127.0.0.1:0;
--ephemeral serves no metrics unless metrics.bind is set.) Needs valgrind
(Debian's package).
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def instructions(binary, load, n, env):
    """Instructions latch executed from start to exit, answering n requests."""
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        out = os.path.join(d, "callgrind.out")
        latch = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
             "serve", "--ephemeral", "--bind", f"127.0.0.1:{port}"],
            cwd=d, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or latch.poll() is not None:
                    sys.exit("latch did not start under valgrind")
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def post(path, body):
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())

        status, _ = post("/api/auth/register/", {"username": "u", "email": "u@example.com", "password": "correct-horse-9"})
        assert status == 201, status
        status, tokens = post("/api/auth/login/", {"username": "u", "password": "correct-horse-9"})
        assert status == 200, status
        for _ in range(n):
            if load == "profile":
                conn.request("GET", "/api/auth/profile/", headers={"Authorization": "Bearer " + tokens["access"]})
            else:
                conn.request("POST", "/api/auth/token/refresh/", json.dumps({"refresh": tokens["refresh"]}),
                             {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
        conn.close()
        latch.terminate()
        latch.wait()
        with open(out) as f:
            return int(re.search(r"^(?:summary|totals):\s+(\d+)", f.read(), re.M).group(1))


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in ("profile", "refresh"):
        sys.exit(__doc__)
    binary, load = os.path.abspath(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 and "=" not in sys.argv[3] else 2000
    env = dict(a.split("=", 1) for a in sys.argv[3:] if "=" in a)
    small = instructions(binary, load, n, env)
    big = instructions(binary, load, 3 * n, env)
    print(f"{load}: {(big - small) / (2 * n):,.0f} instructions per request "
          f"({os.path.relpath(binary)}{''.join(f' {k}={v}' for k, v in env.items())})")


if __name__ == "__main__":
    main()
