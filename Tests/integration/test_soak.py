"""Soak: SWGI_SOAK_REQUESTS (default 1,000,000) requests of a mix (hello,
streaming, uploads, an application that throws) at full concurrency under
event and prefork. No request fails but the intended 500s, no child dies,
and each child's memory stays flat (beyond the free memory Apache's
allocator keeps, MaxMemFree). Only with scripts/test --soak."""
import os
import re
import subprocess

import pytest

from client import get

pytestmark = [pytest.mark.soak, pytest.mark.reliability]

HERE = os.path.dirname(__file__)
TOTAL = int(os.environ.get("SWGI_SOAK_REQUESTS", "1000000"))


def children_rss(server, loaded_only=False):
    """VmRSS (KiB) of each Apache child; with loaded_only, of those children
    that have both applications of the mix loaded (loading one is a one-time
    step of about 2 MiB, not growth)."""
    out = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    rss = {}
    for pid in out:
        try:
            with open("/proc/%s/maps" % pid) as f:
                maps = f.read()
            if loaded_only and not ("libHello.so" in maps and "libSWGITestApps.so" in maps):
                continue
            with open("/proc/%s/status" % pid) as f:
                rss[pid] = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
        except (OSError, IndexError):
            pass
    return rss


def wrk(server, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d%ds" % seconds, "-s", os.path.join(HERE, "soak.lua"),
                          "http://127.0.0.1:%d" % server.port], capture_output=True, text=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return total, non2xx, tuple(int(x) for x in errors.groups()) if errors else (0, 0, 0, 0), out


def test_soak(server, mark):
    if server.mpm not in ("event", "prefork"):
        pytest.skip("the soak runs under event and prefork")
    wrk(server, 3)  # warm-up
    done, intended, failures, lines = 0, 0, 0, []
    before, done_before = None, 0
    while done < TOTAL or before is None:
        total, non2xx, errors, out = wrk(server, 20)
        done += total
        intended += non2xx
        failures += errors[0] + errors[3]  # connect errors and timeouts (read errors: keep-alive closes)
        lines.append("%d requests, %d non-2xx, socket errors %s" % (total, non2xx, errors))
        if before is None:
            # The baseline: after a first round, every child has loaded what it serves.
            before, done_before = children_rss(server, loaded_only=True), done
    after = children_rss(server)
    common = set(before) & set(after)
    growth = {pid: after[pid] - before[pid] for pid in common}
    # Each child served about (done - done_before) / len(after) requests since.
    served = (done - done_before) / len(after)
    per_100k = max(growth.values()) * 100000 / served if growth else 0
    report = "soak %s: %d requests, %d intended 500s (%.1f%%), %d failures; %d children; RSS growth (KiB) " \
             "after the first round, per child alive throughout: %s; %.0f KiB per 100k requests at most" % (
                 server.mpm, done, intended, 100.0 * intended / done, failures, len(after), growth, per_100k)
    print(report)
    with open(os.path.join(HERE, "..", "..", ".build", "soak-%s.txt" % server.mpm), "w") as f:
        f.write(report + "\n" + "\n".join(lines) + "\n")
    log = server.log_since(mark)
    assert "exit signal" not in log, "a child died"
    assert failures == 0
    # The throwing application is one request in ten.
    assert 0.09 < intended / done < 0.11
    assert common, "no child lived through the soak"
    # A child's allocator keeps up to MaxMemFree (2 MiB by default) of freed
    # memory: a child may grow once by that much (prefork's children do, the
    # first time they serve an upload), then stays flat. More is a leak.
    assert max(growth.values()) <= 2048 + 512, report
    resp, _ = get(server, "/hello")
    assert resp.status == 200
