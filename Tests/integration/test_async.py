"""Async applications through Apache: streamed chunk by chunk, run on the
request's thread, cancelled when the client leaves, bounded by Timeout, and
many slow requests at once in one child."""
import asyncio
import re
import resource
import socket
import time

import pytest

from client import get, raw, request, still_serving, timed_chunks
from conftest import MPMS
from harness import VALGRIND, Apache

BLOCK = bytes(range(256)) * 256  # 64 KiB


@pytest.mark.skipif(bool(VALGRIND), reason="timing under valgrind")
@pytest.mark.parametrize("path", ["/slow", "/slow-static"])
def test_slow_streams_its_chunks_one_by_one(server, no_crash, path):
    expect = ["chunk %d of 10" % n for n in range(1, 11)]
    # Loaded once first: the first load of a library just built (the first
    # test of the run) took 0.53 s in CI, which is not what this measures.
    assert get(server, path)[0].status == 200
    seen = timed_chunks(server, path, expect)
    assert [marker for _, marker in seen] == expect
    # 100 ms apart: the first arrives at once, the last about 0.9 s later.
    assert seen[0][0] < 0.5
    assert seen[-1][0] - seen[0][0] > 0.8


def test_every_step_runs_on_the_request_thread(server):
    resp, data = get(server, "/async?case=threads")
    assert resp.status == 200
    assert data.startswith(b"same_thread=true "), data


def test_async_reads_stream_the_body(server):
    blocks = 160  # 10 MiB
    resp, data = request(server, "POST", "/async?case=echo", body=BLOCK * blocks,
                         headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 200
    assert data == b"bytes=%d sum=%d\n" % (len(BLOCK) * blocks, (sum(BLOCK) * blocks) % 2**32)


def test_throwing_before_the_response_is_a_500(server, no_crash, mark):
    resp, _ = get(server, "/async?case=throw-before")
    assert resp.status == 500
    log = server.log_since(mark, wait_for="async failure before the response")
    assert "SWGI application" in log and "async failure before the response" in log
    still_serving(server)


def test_throwing_inside_the_async_body_cuts_the_response(server, no_crash, mark):
    data = raw(server, b"GET /async?case=throw-body HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"Transfer-Encoding: chunked" in head
    assert b"first chunk" in body
    assert not body.endswith(b"0\r\n\r\n"), "a cut response must not end like a complete one"
    log = server.log_since(mark, wait_for="async failure inside the body")
    assert "failed after the response started (connection cut)" in log
    still_serving(server)


def test_a_client_that_leaves_cancels_the_task(server, no_crash, mark):
    # 50 chunks, 200 ms apart; the client reads two and leaves. Apache
    # notices at a write that fails; the task is cancelled at that moment.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /slow?count=50&delay=200 HTTP/1.1\r\nHost: t\r\n\r\n")
        buf = b""
        while b"chunk 2 of 50" not in buf:
            buf += s.recv(65536)
    log = server.log_since(mark, wait_for="Slow: cancelled after", timeout=10)
    stamp = r"\[[A-Z][a-z]{2} [A-Z][a-z]{2} \d+ (\d+):(\d+):([\d.]+) \d+\]"
    noticed = re.search(stamp + r"[^\n]*SWGI: the client has gone: the request's task is cancelled", log)
    cancelled = re.search(stamp + r"[^\n]*Slow: cancelled after (\d+) of 50", log)
    assert noticed and cancelled, log
    # Apache sees a closed connection when a write fails: a few chunks after
    # the client left, not at the end of the 10 s.
    assert int(cancelled.group(4)) < 10, log

    def seconds(m):
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))

    # The application sees its cancellation within 100 ms of Apache noticing.
    assert 0 <= seconds(cancelled) - seconds(noticed) < 0.1, log
    assert "client disconnected before the response was complete" in server.log_since(mark)
    still_serving(server)


def test_a_client_that_leaves_cancels_a_task_that_never_waited(server, no_crash, mark):
    # The body writes 256 MiB and never waits for anything but Apache's
    # writes, so the task is still in its start on the request thread (its
    # handle not yet known to the executor) when a write finds the client
    # gone: the task must see itself cancelled at that moment all the same.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /async?case=flood-write&mb=256 HTTP/1.1\r\nHost: t\r\n\r\n")
        got = 0
        while got < 1 << 20:
            got += len(s.recv(65536))
    log = server.log_since(mark, wait_for="flood-write stopped after", timeout=20)
    stopped = re.search(r"AsyncCases: flood-write stopped after (\d+) chunks, cancelled=(\w+)", log)
    assert stopped, log
    assert int(stopped.group(1)) < 4096, log  # not the whole body
    assert "SWGI: the client has gone: the request's task is cancelled" in log
    assert stopped.group(2) == "true", log
    still_serving(server)


@pytest.mark.skipif(bool(VALGRIND), reason="timing under valgrind")
def test_no_progress_for_timeout_ends_the_request(server, no_crash, mark):
    # The swgi.test virtual host has Timeout 3.
    start = time.time()
    resp, _ = request(server, "GET", "/async?case=hang", port=server.port2, host="swgi.test")
    took = time.time() - start
    assert resp.status == 504
    assert 2.5 < took < 10, took
    log = server.log_since(mark, wait_for="hang cancelled")
    assert "made no progress for 3 s (Timeout): its task was cancelled" in log
    assert "AsyncCases: hang cancelled" in log
    still_serving(server)


@pytest.mark.skipif(bool(VALGRIND), reason="timing under valgrind")
def test_progress_keeps_timeout_away(server, no_crash):
    # Timeout 3 on swgi.test counts from the task's last progress: six chunks
    # a second apart (5 s in all) each start it again.
    start = time.time()
    resp, data = request(server, "GET", "/slow?count=6&delay=1000", port=server.port2, host="swgi.test")
    took = time.time() - start
    assert resp.status == 200
    assert data == b"".join(b"chunk %d of 6\n" % n for n in range(1, 7))
    assert took > 4.5, took


CROWD_SITE = """
ServerLimit 1
StartServers 1
ThreadLimit 1000
ThreadsPerChild 1000
MaxRequestWorkers 1000
MinSpareThreads 1
MaxSpareThreads 1000
ListenBacklog 2048
KeepAlive Off
SWGIAppAlias /async @ROOT@/apps/libSWGITestApps.so entry=async
"""


async def one_slow_request(port, ms):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /async?case=sleep&ms=%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % ms)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def crowd(port, n, ms, during):
    tasks = [asyncio.ensure_future(one_slow_request(port, ms)) for _ in range(n)]
    await asyncio.sleep(ms / 2000)
    sample = during()
    return await asyncio.gather(*tasks), sample


@pytest.mark.skipif(bool(VALGRIND), reason="a thousand threads under valgrind")
@pytest.mark.parametrize("mpm", [m for m in MPMS if m != "prefork"])
def test_a_thousand_slow_requests_in_one_child(build, mpm):
    """1,000 requests that each await 1.5 s, at once, against one child of
    1,000 threads: all answered, no deadlock, and the child runs no more
    threads than Apache's own plus a few for Swift's timers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    module, apps = build
    apache = Apache(module, mpm=mpm, site=CROWD_SITE,
                    apps={"libSWGITestApps.so": apps["SWGITestApps"]}).start()
    try:
        assert get(apache, "/async?case=sleep&ms=1")[0].status == 200  # loaded

        def threads_now():
            counts = {}
            for pid in apache.children():
                with open("/proc/%d/status" % pid) as f:
                    counts[pid] = int(re.search(r"Threads:\s+(\d+)", f.read()).group(1))
            return counts

        before = threads_now()
        start = time.time()
        answers, during = asyncio.run(crowd(apache.port, 1000, 1500, threads_now))
        took = time.time() - start
        assert len(answers) == 1000
        assert all(a.startswith(b"HTTP/1.1 200") and a.endswith(b"slept 1500 ms\n") for a in answers)
        assert took < 15, took
        assert len(during) == 1, during  # one child served them all
        (child, count), = during.items()
        # Apache's 1,000 workers plus its listener and other threads, plus a
        # handful for Swift's timers: not a thread per request on top.
        assert count <= 1000 + 20, (before, during)
        print("threads in the child: before %s, during %s; 1,000 requests in %.2f s" % (before, during, took))
        assert "exit signal" not in apache.error_log()
    finally:
        apache.stop()
