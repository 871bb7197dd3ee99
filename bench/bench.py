#!/usr/bin/env python3
"""latch's benchmark and soak test. Start it through bench/run.sh or bench/soak.sh.

bench: drives a release latch (default password hashing, temp database) with
wrk from a second process on loopback, beside two ceilings measured in the
same run: a bare warp server answering a fixed small JSON (the HTTP ceiling)
and one scrypt hash with the configured parameters (hashing ceiling: cores /
hash time). Prints one markdown table.

tls: the same over HTTPS, beside bare warp over latch's TLS setup, and the
handshake rate (bench/run.sh --tls).
soak: about a minute of mixed load; fails if any request errs, RSS grows by
more than 10% between the first and last quarter, or /metrics does not count
the load.

postgres: the same requests on SQLite and on PostgreSQL (on loopback, in a
throwaway cluster with fsync on: bench/run.sh --postgres), beside bare warp;
then two latch instances on one PostgreSQL database, each loaded by its own
wrk at once. Prints where the CPU time of each request goes: latch, the
PostgreSQL server processes, and the rest (wrk, the kernel).

hot: GET profile/ and POST token/refresh/ alone (the hot paths), in rounds
that alternate a --baseline binary (an earlier build), this build with
metrics on (scraped every second during the load) and this build with
metrics off; prints the median of the rounds, and latch's CPU time per
request (from /proc), which other load on the machine disturbs far less than
requests/s. For comparing a change to the hot paths against the build before
it.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import platform
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PASSWORD = "bench-password-1"
SECRET = "bench-signing-secret-0123456789abcdef0123"
# A benchmark from one address is not abuse: the loads that register or log
# in many times run with limits off, and one row shows what the limits cost.
LIMITS_OFF = {"LATCH_LIMITS_ENABLED": "false"}
SCRYPT = (14, 8, 5)  # latch's defaults: N=2^14, r=8, p=5
SCRYPT_MIB = 128 * SCRYPT[1] * (1 << SCRYPT[0]) / 2**20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"latch exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.001)
    sys.exit("latch did not become healthy")


class Latch:
    """A latch process on a fresh temp database (or `db`) with default
    settings, but a known signing secret so that the benchmark can mint tokens,
    and its metrics on a free port (`scrape()`)."""

    def __init__(self, binary, env=None, db=None, https=False, database_url=None):
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.metrics_port = free_port()
        self.db = db or os.path.join(self.dir.name, "auth.db")
        where = ["--db", self.db]
        if database_url:
            env = {**(env or {}), "LATCH_DATABASE_URL": database_url}
            where = []
        self.proc = subprocess.Popen(
            [binary, "--bind", f"127.0.0.1:{self.port}", *where],
            cwd=self.dir.name,
            env={**os.environ, "LATCH_JWT_SECRET": SECRET,
                 "LATCH_METRICS_BIND": f"127.0.0.1:{self.metrics_port}", **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.https = https
        if https:
            wait_tls(self.port, self.proc)
        else:
            wait_healthy(self.port, self.proc)
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"

    def post(self, path, body):
        if self.https:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())

    def users(self, prefix, count):
        """Registers prefix0..prefix<count-1>, for loads that log in as many users."""
        for n in range(count):
            status, _ = self.post("/api/auth/register/", {"username": f"{prefix}{n}", "email": f"{prefix}{n}@example.com", "password": PASSWORD})
            assert status == 201, status

    def user(self, name):
        """Registers `name` and logs in; returns the token pair."""
        status, _ = self.post("/api/auth/register/", {"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        assert status == 201, status
        status, tokens = self.post("/api/auth/login/", {"username": name, "password": PASSWORD})
        assert status == 200, status
        return tokens

    def scrape(self):
        """The metrics, as {'name{labels}': value}."""
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200, response.status
        metrics = {}
        for line in response.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                metrics[name] = float(value)
        return metrics

    def cpu_secs(self):
        """CPU time the process has used (user + system)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self, keep_db=False):
        self.proc.terminate()
        self.proc.wait()
        if not keep_db:
            self.dir.cleanup()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_refresh_tokens(count, user_id):
    """Refresh tokens signed with the benchmark's secret, as simplejwt would
    sign them (latch has no record of them: they are blacklisted by id)."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    now = int(time.time())
    tokens = []
    for _ in range(count):
        claims = {"token_type": "refresh", "exp": now + 86400, "iat": now, "jti": os.urandom(16).hex(), "user_id": str(user_id)}
        payload = b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        tokens.append(f"{header}.{payload}.{b64(signature)}")
    return tokens


def to_ms(value):
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url, connections, seconds, script=None, env=None, timeout="30s"):
    """Runs wrk; returns requests/s, p50 and p99 in ms, non-2xx and socket errors."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", f"--timeout={timeout}"]
    if script:
        cmd += ["-s", os.path.join(BENCH, script)]
    out = subprocess.run(cmd + [url], env={**os.environ, **(env or {})}, capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)\.000%\s+(\S+)", out, re.M)) or dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(latency["50"]),
        "p99": to_ms(latency["99"]),
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }


def ms(value):
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def row(name, conns, r, ratio="", note=""):
    return f"| {name} | {conns} | {r['rps']:,.0f} | {ms(r['p50'])} | {ms(r['p99'])} | {r['non2xx'] + r['socket_errors']} | {ratio} | {note} |"


def cold_start(binary, runs=20):
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            port = free_port()
            start = time.perf_counter()
            proc = subprocess.Popen([binary, "--bind", f"127.0.0.1:{port}", "--db", f"{d}/auth.db"], cwd=d,
                                    env={**os.environ, "LATCH_METRICS_BIND": "127.0.0.1:0"},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_healthy(port, proc)
            times.append((time.perf_counter() - start) * 1000)
            proc.terminate()
            proc.wait()
    return statistics.median(times)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores ({cpu}), {mem // 1024} GiB, Linux {platform.release()}"


def hashing_ceiling(args):
    """One scrypt hash's milliseconds, and the hashes per second all cores make."""
    hash_ms = float(subprocess.run([args.scrypt_time, *map(str, SCRYPT)], capture_output=True, text=True, check=True).stdout)
    return hash_ms, os.cpu_count() / (hash_ms / 1000)


def http_ceiling(args, seconds):
    """wrk against bare warp answering a fixed small JSON: the HTTP ceiling."""
    port = free_port()
    bare = subprocess.Popen([args.bare, f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_healthy(port, bare)
    ceiling = wrk(f"http://127.0.0.1:{port}/", 64, seconds)
    bare.terminate()
    bare.wait()
    return ceiling


def bench(args):
    seconds = args.seconds
    cores = os.cpu_count()
    hash_ms, hash_ceiling = hashing_ceiling(args)
    ceiling = http_ceiling(args, seconds)

    latch = Latch(args.latch)
    tokens = latch.user("bencher")
    env = {"ACCESS": tokens["access"], "REFRESH": tokens["refresh"], "USERNAME": "bencher", "PASSWORD": PASSWORD, "PREFIX": "r"}
    profile = wrk(latch.url + "/api/auth/profile/", 64, seconds, "profile.lua", env)
    refresh = wrk(latch.url + "/api/auth/token/refresh/", 64, seconds, "refresh.lua", env)
    verify = wrk(latch.url + "/api/auth/token/verify/", 64, seconds, "verify.lua", env)
    with tempfile.NamedTemporaryFile("w", suffix=".tokens") as minted:
        minted.write("\n".join(mint_refresh_tokens(200_000, 1)))
        minted.flush()
        blacklist = wrk(latch.url + "/api/auth/token/blacklist/", 64, seconds, "blacklist.lua", {"TOKENS": minted.name})
    # Hash-bound runs complete few requests per second: run them longer.
    latch.users("login", 16)
    logins = {**env, "USERNAME": "login", "USERS": "16"}
    login = wrk(latch.url + "/api/auth/login/", 16, 2 * seconds, "login.lua", logins)
    profile_16 = wrk(latch.url + "/api/auth/profile/", 16, seconds, "profile.lua", env)
    healthz = wrk(latch.url + "/healthz", 64, seconds)
    latch.stop(keep_db=True)

    # The same work in plain warp handlers, on the same database and tokens.
    port = free_port()
    reference = subprocess.Popen([args.reference, latch.db, f"127.0.0.1:{port}", SECRET],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    ref_url = f"http://127.0.0.1:{port}"
    ref_profile = wrk(ref_url + "/api/auth/profile/", 64, seconds, "profile.lua", env)
    ref_refresh = wrk(ref_url + "/api/auth/token/refresh/", 64, seconds, "refresh.lua", env)
    reference.terminate()
    reference.wait()
    latch.dir.cleanup()

    # Request logging off (latch logs one line per request by default).
    quiet = Latch(args.latch, {"LATCH_LOG_LEVEL": "warn"})
    quiet_tokens = quiet.user("quiet")
    quiet_profile = wrk(quiet.url + "/api/auth/profile/", 64, seconds, "profile.lua", {"ACCESS": quiet_tokens["access"]})
    quiet.stop()

    latch = Latch(args.latch, LIMITS_OFF)
    latch.users("login", 16)
    login_unlimited = wrk(latch.url + "/api/auth/login/", 16, 2 * seconds, "login.lua", logins)
    register = wrk(latch.url + "/api/auth/register/", 16, 2 * seconds, "register.lua", env)
    latch.stop()

    latch = Latch(args.latch, {"LATCH_JWT_ROTATE_REFRESH_TOKENS": "true"})
    rotate = wrk(latch.url + "/api/auth/token/refresh/", 64, seconds, "rotate.lua", {"REFRESH": latch.user("rotator")["refresh"]})
    latch.stop()

    # The cheap endpoints on a large database: 1,000,000 users and 1,000,000
    # blacklisted tokens, against the same on the nearly empty one above.
    latch = Latch(args.latch)
    latch.stop(keep_db=True)
    seed_started = time.monotonic()
    subprocess.run([sys.executable, os.path.join(BENCH, "seed.py"), latch.db, str(args.big), str(args.big)], check=True)
    seed_secs = time.monotonic() - seed_started
    big = Latch(args.latch, db=latch.db)
    big_tokens = big.user("bencher")
    big_env = {"ACCESS": big_tokens["access"], "REFRESH": big_tokens["refresh"]}
    big_profile = wrk(big.url + "/api/auth/profile/", 64, seconds, "profile.lua", big_env)
    big_refresh = wrk(big.url + "/api/auth/token/refresh/", 64, seconds, "refresh.lua", big_env)
    big_verify = wrk(big.url + "/api/auth/token/verify/", 64, seconds, "verify.lua", big_env)
    db_mib = os.path.getsize(latch.db) / 2**20
    big.stop()
    latch.dir.cleanup()

    # Isolation and memory: a fresh server under a 256-connection login flood,
    # with a profile load running beside it.
    # (Limits off: 256 logins of one account at once would mostly get 429.)
    latch = Latch(args.latch, LIMITS_OFF)
    tokens = latch.user("flooder")
    env.update({"ACCESS": tokens["access"], "USERNAME": "flooder"})
    baseline_rss = latch.rss_kib()
    flood = {}
    flood_thread = threading.Thread(target=lambda: flood.update(
        wrk(latch.url + "/api/auth/login/", 256, seconds + 4, "login.lua", env, timeout="60s")))
    flood_thread.start()
    time.sleep(2)
    during = wrk(latch.url + "/api/auth/profile/", 16, seconds, "profile.lua", env)
    flood_thread.join()
    peak_rss_mib = latch.rss_kib("VmHWM") / 1024
    latch.stop()

    cold_ms = cold_start(args.latch)
    hash_threads = cores
    rss_bound = hash_threads * SCRYPT_MIB + 64

    lines = [
        f"Machine: {machine()}. wrk 1 thread on the same machine, loopback. {seconds} s per run ({2 * seconds} s for login and register).",
        f"Password hashing: scrypt N=2^{SCRYPT[0]}, r={SCRYPT[1]}, p={SCRYPT[2]} ({SCRYPT_MIB:.0f} MiB per hash), "
        f"one hash {hash_ms:.1f} ms, so the hashing ceiling is {cores} cores / {hash_ms:.1f} ms = {hash_ceiling:.1f} hashes/s.",
        "",
        "| load | connections | requests/s | p50 | p99 | non-2xx | ratio | vs. |",
        "|---|---|---|---|---|---|---|---|",
        row("bare warp, fixed JSON", 64, ceiling, "1.00", "HTTP ceiling"),
        row("GET /healthz (latch's plumbing alone)", 64, healthz, f"{healthz['rps'] / ceiling['rps']:.2f}", "bare warp (target >= 0.85)"),
        row("GET profile/, plain warp handler (examples/reference.rs)", 64, ref_profile, f"{ref_profile['rps'] / ceiling['rps']:.2f}", "bare warp: profile's work ceiling"),
        row("POST token/refresh/, plain warp handler", 64, ref_refresh, f"{ref_refresh['rps'] / ceiling['rps']:.2f}", "bare warp: refresh's work ceiling"),
        row("GET profile/", 64, profile, f"{profile['rps'] / ref_profile['rps']:.2f}", f"the plain handler (target >= 0.90); {profile['rps'] / ceiling['rps']:.2f} of bare warp"),
        row("GET profile/, request logging off", 64, quiet_profile, f"{profile['rps'] / quiet_profile['rps']:.2f}", "logging on / off (target >= 0.95)"),
        row("POST token/refresh/ (blacklist check)", 64, refresh, f"{refresh['rps'] / ref_refresh['rps']:.2f}", f"the plain handler (target >= 0.85); {refresh['rps'] / ceiling['rps']:.2f} of bare warp (target >= 0.40)"),
        row("POST token/verify/ (a refresh token)", 64, verify, f"{verify['rps'] / ceiling['rps']:.2f}", "bare warp"),
        row("POST token/refresh/, rotation on", 64, rotate, f"{rotate['rps'] / ceiling['rps']:.2f}", "bare warp (target >= 0.40)"),
        row("POST token/blacklist/ (a new token each)", 64, blacklist, f"{blacklist['rps'] / ceiling['rps']:.2f}", "bare warp"),
        row("POST login/", 16, login, f"{login['rps'] / hash_ceiling:.2f}", "hashing ceiling (target >= 0.90)"),
        row("POST login/, limits off", 16, login_unlimited, f"{login['rps'] / login_unlimited['rps']:.2f}",
            "limits on / off (target: cost < 5%)"),
        row("POST register/ (limits off)", 16, register, f"{register['rps'] / hash_ceiling:.2f}", "hashing ceiling (target >= 0.90)"),
        row("GET profile/, no flood", 16, profile_16, "1.00", "isolation baseline"),
        row("GET profile/ during a login flood", 16, during, f"{during['rps'] / profile_16['rps']:.2f}",
            "same without the flood (target > 0.30, p99 < 20 ms)"),
        row("POST login/ flood, sharing the CPU with that profile load", 256, flood,
            f"{flood['rps'] / hash_ceiling:.2f}", "hashing ceiling"),
        row(f"GET profile/, {args.big:,} users and blacklisted tokens", 64, big_profile,
            f"{big_profile['rps'] / profile['rps']:.2f}", "same on an empty database"),
        row(f"POST token/refresh/, {args.big:,} users and blacklisted tokens", 64, big_refresh,
            f"{big_refresh['rps'] / refresh['rps']:.2f}", "same on an empty database"),
        row(f"POST token/verify/, {args.big:,} users and blacklisted tokens", 64, big_verify,
            f"{big_verify['rps'] / verify['rps']:.2f}", "same on an empty database"),
        "",
        f"The large database ({db_mib:.0f} MiB) was seeded by bench/seed.py in {seed_secs:.0f} s.",
        f"Peak RSS under the 256-connection login flood: {peak_rss_mib:.0f} MiB "
        f"(bound: {hash_threads} hash threads x {SCRYPT_MIB:.0f} MiB + 64 MiB = {rss_bound:.0f} MiB; idle: {baseline_rss / 1024:.0f} MiB).",
        f"Cold start, exec to first 200 on /healthz with a fresh database: {cold_ms:.1f} ms (median of 20; target <= 50 ms).",
    ]
    print("\n".join(lines))


def wait_tls(port, proc, timeout=10.0):
    """Waits until `port` takes TLS handshakes (the certificate is not checked)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with context.wrap_socket(raw):
                    return
        except OSError:
            time.sleep(0.01)
    sys.exit("no TLS on the port")


def tls(args):
    """HTTPS: the bare warp ceiling over latch's TLS setup, latch's profile
    and refresh over TLS with keep-alive, and handshakes per second (a new
    connection for every request)."""
    seconds = args.seconds
    certs = tempfile.TemporaryDirectory()
    port = free_port()
    bare = subprocess.Popen([args.bare_tls, f"127.0.0.1:{port}", certs.name],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_tls(port, bare)
    bare_url = f"https://127.0.0.1:{port}/"
    ceiling = wrk(bare_url, 64, seconds)
    bare_handshakes = wrk(bare_url, 64, seconds, "close.lua")
    bare.terminate()
    bare.wait()

    cert, key = os.path.join(certs.name, "cert.pem"), os.path.join(certs.name, "key.pem")
    # The same server over plain HTTP, for what TLS costs.
    plain = Latch(args.latch)
    plain_tokens = plain.user("bencher")
    plain_profile = wrk(plain.url + "/api/auth/profile/", 64, seconds, "profile.lua", {"ACCESS": plain_tokens["access"]})
    plain.stop()
    latch = Latch(args.latch, {"LATCH_SERVER_TLS_CERT_FILE": cert, "LATCH_SERVER_TLS_KEY_FILE": key}, https=True)
    tokens = latch.user("bencher")
    env = {"ACCESS": tokens["access"], "REFRESH": tokens["refresh"]}
    profile = wrk(latch.url + "/api/auth/profile/", 64, seconds, "profile.lua", env)
    refresh = wrk(latch.url + "/api/auth/token/refresh/", 64, seconds, "refresh.lua", env)
    handshakes = wrk(latch.url + "/healthz", 64, seconds, "close.lua")
    latch.stop()
    certs.cleanup()
    lines = [
        f"Machine: {machine()}. wrk 1 thread (OpenSSL client) on the same machine, loopback, TLS 1.3, "
        f"a self-signed ECDSA P-256 certificate. {seconds} s per run.",
        "",
        "| load | connections | requests/s | p50 | p99 | non-2xx | ratio | vs. |",
        "|---|---|---|---|---|---|---|---|",
        row("bare warp over latch's TLS setup, fixed JSON", 64, ceiling, "1.00", "HTTPS ceiling"),
        row("GET profile/ over TLS", 64, profile, f"{profile['rps'] / ceiling['rps']:.2f}",
            f"bare warp over TLS; {profile['rps'] / plain_profile['rps']:.2f} of profile over plain HTTP"),
        row("POST token/refresh/ over TLS", 64, refresh, f"{refresh['rps'] / ceiling['rps']:.2f}", "bare warp over TLS"),
        row("new TLS connection per request, bare warp", 64, bare_handshakes, "1.00", "handshake ceiling"),
        row("new TLS connection per request, GET /healthz", 64, handshakes,
            f"{handshakes['rps'] / bare_handshakes['rps']:.2f}", "bare warp's handshakes"),
    ]
    print("\n".join(lines))


def soak(args):
    latch = Latch(args.latch, LIMITS_OFF)
    tokens = latch.user("soaker")
    env = {"ACCESS": tokens["access"], "REFRESH": tokens["refresh"], "USERNAME": "soaker", "PASSWORD": PASSWORD, "PREFIX": "s"}
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append(latch.rss_kib())
            time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    before = counted_requests(latch.scrape())
    result = wrk(latch.url, 32, args.seconds, "mixed.lua", env)
    done.set()
    sampler.join()
    metrics = latch.scrape()
    latch.stop()
    counted = counted_requests(metrics) - before
    server_errors = sum(v for k, v in metrics.items() if k.startswith("latch_http_requests_total") and 'status="5' in k)

    quarter = max(1, len(samples) // 4)
    first, last = statistics.mean(samples[:quarter]), statistics.mean(samples[-quarter:])
    growth = (last - first) / first
    print(f"soak: {result['requests']} requests in {args.seconds} s ({result['rps']:.0f}/s), "
          f"{result['non2xx']} non-2xx, {result['socket_errors']} socket errors; "
          f"RSS first quarter {first / 1024:.1f} MiB, last quarter {last / 1024:.1f} MiB ({growth:+.1%}); "
          f"/metrics counted {counted:.0f} requests, {server_errors:.0f} with 5xx")
    failures = []
    # wrk does not count the answers still on their way when it stops.
    if not result["requests"] <= counted <= result["requests"] + 64 or server_errors:
        failures.append("/metrics does not count the load")
    if result["non2xx"] or result["socket_errors"]:
        failures.append("requests failed")
    if growth > 0.10:
        failures.append("RSS grew by more than 10%")
    if failures:
        sys.exit("soak FAILED: " + ", ".join(failures))
    print("soak passed")


def counted_requests(metrics):
    return sum(v for k, v in metrics.items() if k.startswith("latch_http_requests_total{"))


def hot(args):
    """profile and refresh: the baseline build, this build with metrics on
    (scraped every second), this build with metrics off; alternating rounds."""
    if not args.baseline:
        sys.exit("hot: give the earlier build with --baseline PATH")
    variants = [
        ("before: " + os.path.relpath(args.baseline, ROOT), args.baseline, {}, False),
        ("metrics on, scraped every second", args.latch, {}, True),
        ("metrics off (metrics.bind = \"\")", args.latch, {"LATCH_METRICS_BIND": ""}, False),
    ]
    runs = {(name, load): [] for name, *_ in variants for load in ("profile", "refresh")}
    counts = []
    for round_ in range(args.rounds):
        # Each variant takes each place in the order in turn: whatever else
        # runs on the machine must not always fall on the same one.
        shift = round_ % len(variants)
        for name, binary, extra, scraping in variants[shift:] + variants[:shift]:
            latch = Latch(binary, extra)
            tokens = latch.user("bencher")
            env = {"ACCESS": tokens["access"], "REFRESH": tokens["refresh"]}
            for load, path, script in (("profile", "/api/auth/profile/", "profile.lua"),
                                       ("refresh", "/api/auth/token/refresh/", "refresh.lua")):
                done = threading.Event()
                scraper = threading.Thread(target=lambda: [latch.scrape() for _ in iter(lambda: done.wait(1.0), True)])
                if scraping:
                    before = counted_requests(latch.scrape())
                    scraper.start()
                cpu = latch.cpu_secs()
                r = wrk(latch.url + path, 64, args.seconds, script, env)
                r["cpu_us"] = (latch.cpu_secs() - cpu) / max(r["requests"], 1) * 1e6
                if scraping:
                    done.set()
                    scraper.join()
                    counts.append((load, r["requests"], counted_requests(latch.scrape()) - before))
                runs[(name, load)].append(r)
                print(f"round {round_ + 1}: {name}, {load}: {r['rps']:,.0f}/s, p99 {ms(r['p99'])}, "
                      f"{r['cpu_us']:.1f} us CPU/request", file=sys.stderr)
            latch.stop()
    print(f"{args.rounds} rounds of {args.seconds} s per load, alternating; the median round of each "
          "(by requests/s), and the median CPU time per request over the rounds:")
    print()
    print("| build | load | connections | requests/s | p50 | p99 | non-2xx | ratio | latch CPU per request | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    def median_round(name, load):
        rs = sorted(runs[(name, load)], key=lambda r: r["rps"])
        return rs[len(rs) // 2], statistics.median(r["cpu_us"] for r in rs)

    for load in ("profile", "refresh"):
        base, base_cpu = median_round(variants[0][0], load)
        base = base["rps"]
        for name, *_ in variants:
            r, cpu = median_round(name, load)
            label = "GET profile/" if load == "profile" else "POST token/refresh/"
            print(f"| {name} | {label} | 64 | {r['rps']:,.0f} | {ms(r['p50'])} | {ms(r['p99'])} | "
                  f"{r['non2xx'] + r['socket_errors']} | {r['rps'] / base:.2f} | {cpu:.1f} us | {cpu / base_cpu:.2f} |")
    print()
    for load, by_wrk, by_metrics in counts:
        print(f"{load}: wrk counted {by_wrk:,} requests, /metrics {by_metrics:,.0f}")


def postgres_cpu_secs():
    """CPU time used so far by every PostgreSQL server process."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm.startswith("postgres"):
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def fresh_postgres_database(server_url):
    """A new database on the server; its URL."""
    name = "bench_" + os.urandom(6).hex()
    subprocess.run(["psql", "-q", "-c", f"CREATE DATABASE {name}", server_url], check=True)
    base, query = (server_url.split("?", 1) + [""])[:2]
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def postgres(args):
    """SQLite and PostgreSQL side by side, then two instances on PostgreSQL."""
    server = os.environ.get("LATCH_BENCH_DATABASE_URL")
    if not server:
        sys.exit("postgres mode needs LATCH_BENCH_DATABASE_URL (bench/run.sh --postgres sets it)")
    seconds = args.seconds
    _, hash_ceiling = hashing_ceiling(args)
    ceiling = http_ceiling(args, seconds)

    def measured(latch, run):
        """Runs `run`; returns its wrk result and the CPU ms per request of
        latch and of the PostgreSQL server."""
        latch_before, pg_before = latch.cpu_secs(), postgres_cpu_secs()
        result = run()
        requests = max(result["requests"], 1)
        result["latch_ms"] = (latch.cpu_secs() - latch_before) * 1000 / requests
        result["pg_ms"] = (postgres_cpu_secs() - pg_before) * 1000 / requests
        return result

    results = {}
    for backend in ["sqlite", "postgres"]:
        url = fresh_postgres_database(server) if backend == "postgres" else None
        latch = Latch(args.latch, LIMITS_OFF, database_url=url)
        tokens = latch.user("bencher")
        latch.users("login", 16)
        env = {"ACCESS": tokens["access"], "REFRESH": tokens["refresh"], "USERNAME": "login", "USERS": "16",
               "PASSWORD": PASSWORD, "PREFIX": "r"}
        results[backend] = {
            "profile": measured(latch, lambda: wrk(latch.url + "/api/auth/profile/", 64, seconds, "profile.lua", env)),
            "refresh": measured(latch, lambda: wrk(latch.url + "/api/auth/token/refresh/", 64, seconds, "refresh.lua", env)),
            "login": measured(latch, lambda: wrk(latch.url + "/api/auth/login/", 16, 2 * seconds, "login.lua", env)),
            "register": measured(latch, lambda: wrk(latch.url + "/api/auth/register/", 16, 2 * seconds, "register.lua", env)),
        }
        latch.stop()

    # Two instances on one database, each loaded by its own wrk at once.
    url = fresh_postgres_database(server)
    pair = [Latch(args.latch, LIMITS_OFF, database_url=url) for _ in range(2)]
    tokens = pair[0].user("bencher")
    env = {"ACCESS": tokens["access"], "REFRESH": tokens["refresh"]}
    both = {}
    for load, script, path in [("profile", "profile.lua", "/api/auth/profile/"),
                               ("refresh", "refresh.lua", "/api/auth/token/refresh/")]:
        outcome = [None, None]
        def run(i):
            outcome[i] = wrk(pair[i].url + path, 32, seconds, script, env)
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        both[load] = outcome
    for latch in pair:
        latch.stop()

    def line(name, conns, r, base, base_name):
        note = f"{r['rps'] / base['rps']:.2f} of {base_name}; CPU per request: latch {r['latch_ms']:.3f} ms, PostgreSQL {r['pg_ms']:.3f} ms"
        return row(name, conns, r, f"{r['rps'] / ceiling['rps']:.2f}", note)

    s, p = results["sqlite"], results["postgres"]
    lines = [
        f"Machine: {machine()}. wrk 1 thread on the same machine, loopback; PostgreSQL 15 on loopback in a "
        f"throwaway cluster (pg_virtualenv, fsync on, default settings). {seconds} s per run ({2 * seconds} s for login and register).",
        f"Password hashing: scrypt N=2^{SCRYPT[0]}, r={SCRYPT[1]}, p={SCRYPT[2]}: hashing ceiling {hash_ceiling:.1f} hashes/s.",
        "",
        "| load | connections | requests/s | p50 | p99 | non-2xx | of bare warp | vs. |",
        "|---|---|---|---|---|---|---|---|",
        row("bare warp, fixed JSON", 64, ceiling, "1.00", "HTTP ceiling"),
    ]
    for load, conns in [("profile", 64), ("refresh", 64), ("login", 16), ("register", 16)]:
        label = {"profile": "GET profile/", "refresh": "POST token/refresh/", "login": "POST login/",
                 "register": "POST register/"}[load]
        lines.append(line(f"{label}, SQLite", conns, s[load], s[load], "SQLite"))
        lines.append(line(f"{label}, PostgreSQL", conns, p[load], s[load], "SQLite"))
    for load in ["profile", "refresh"]:
        a, b = both[load]
        total = a["rps"] + b["rps"]
        single = p[load]["rps"]
        lines.append(f"| {load}, two instances on PostgreSQL, 32 connections each | 2 x 32 | {a['rps']:,.0f} + {b['rps']:,.0f} = {total:,.0f} | "
                     f"{ms(a['p50'])} / {ms(b['p50'])} | {ms(a['p99'])} / {ms(b['p99'])} | "
                     f"{a['non2xx'] + a['socket_errors'] + b['non2xx'] + b['socket_errors']} | {total / ceiling['rps']:.2f} | "
                     f"{total / single:.2f} of one instance with 64 |")
    lines += ["", f"Hashing ceiling for login and register: {hash_ceiling:.1f}/s; login on SQLite {s['login']['rps'] / hash_ceiling:.2f} "
              f"and on PostgreSQL {p['login']['rps'] / hash_ceiling:.2f} of it."]
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["bench", "soak", "tls", "hot", "postgres"])
    parser.add_argument("--latch", default=os.path.join(ROOT, "target/release/latch"))
    parser.add_argument("--bare", default=os.path.join(ROOT, "target/release/examples/bare_warp"))
    parser.add_argument("--bare-tls", default=os.path.join(ROOT, "target/release/examples/bare_tls"))
    parser.add_argument("--scrypt-time", default=os.path.join(ROOT, "target/release/examples/scrypt_time"))
    parser.add_argument("--reference", default=os.path.join(ROOT, "target/release/examples/reference"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--big", type=int, default=1_000_000, help="users and blacklisted tokens in the large database")
    parser.add_argument("--baseline", help="hot: the earlier latch binary to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="hot: how many rounds")
    args = parser.parse_args()
    args.latch, args.bare, args.bare_tls, args.scrypt_time, args.reference = map(
        os.path.abspath, (args.latch, args.bare, args.bare_tls, args.scrypt_time, args.reference))
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
    {"bench": bench, "soak": soak, "tls": tls, "hot": hot, "postgres": postgres}[args.mode](args)


if __name__ == "__main__":
    main()
