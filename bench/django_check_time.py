"""Django's side of the imported-hash figures in BENCHMARKS.md: how long
Django's own check_password takes for one stored hash (median of several, in
milliseconds), to put beside examples/verify_time.rs, which times latch's.

Usage: python bench/django_check_time.py PASSWORD STORED [RUNS] [--cpu]
With --cpu, the process's CPU time instead of wall time (argon2-cffi runs an
argon2 hash's lanes on threads, so its wall time hides work on other cores).
Needs Django (and argon2-cffi for argon2): tests/interop/requirements.txt.
"""

import statistics
import sys
import time
import timeit

import django
from django.conf import settings

settings.configure()  # Django's default PASSWORD_HASHERS
django.setup()

from django.contrib.auth.hashers import check_password  # noqa: E402

args = [a for a in sys.argv[1:] if a != "--cpu"]
password, stored = args[0], args[1]
runs = int(args[2]) if len(args) > 2 else 7
assert check_password(password, stored), "the password does not match the hash"
timer = time.process_time if "--cpu" in sys.argv else time.perf_counter
times = timeit.repeat(lambda: check_password(password, stored), number=1, repeat=runs, timer=timer)
print(f"{statistics.median(times) * 1000:.2f}")
