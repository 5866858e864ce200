"""swgi-serve runs the same application libraries without Apache and gives
the same environ, and the same responses, for the same requests."""
import http.client
import json
import os
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from client import raw, request, timed_chunks
from harness import free_port

# Keys both servers define, whose values must be equal for the same request.
SHARED = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
          "SERVER_NAME", "SERVER_PROTOCOL", "REMOTE_ADDR", "REQUEST_URI", "REQUEST_SCHEME",
          "GATEWAY_INTERFACE", "SERVER_ADDR", "swgi.version", "swgi.url_scheme", "swgi.input",
          "swgi.errors", "swgi.file_wrapper", "swgi.run_once"]


class SwgiServe:
    """A running swgi-serve; stopped with stop()."""

    def __init__(self, binary, library, mount="", env=(), entry="application", options=()):
        self.port = free_port()
        args = [binary, "--port", str(self.port), "--mount", mount, "--entry", entry, *options]
        for name, value in env:
            args += ["--setenv", name, value]
        # The log goes to a file, so that a test can read it while the server runs.
        self.log_file = tempfile.NamedTemporaryFile(prefix="swgi-serve-", suffix=".log")
        self.process = subprocess.Popen(args + [library], stdout=subprocess.PIPE, stderr=self.log_file, text=True)
        line = self.process.stdout.readline()
        assert line.startswith("Serving "), line + self.log()

    def log(self):
        with open(self.log_file.name, errors="replace") as f:
            return f.read()

    def status(self, field):
        """A number from /proc/PID/status (VmRSS in KiB, Threads)."""
        with open("/proc/%d/status" % self.process.pid) as f:
            return [int(l.split()[1]) for l in f if l.startswith(field + ":")][0]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        log = self.log()
        self.log_file.close()
        return log


@pytest.fixture(scope="module")
def serve_binary(build):
    _, apps = build
    binary = os.path.join(os.path.dirname(apps["Hello"]), "swgi-serve")
    assert os.path.exists(binary), "scripts/build builds swgi-serve"
    return binary


@pytest.fixture(scope="module")
def serve(serve_binary, build, tmp_path_factory):
    _, apps = build
    blog = tmp_path_factory.mktemp("serve-blog")
    servers = {}

    def start(name, mount, entry_lib=None, env=()):
        if name not in servers:
            servers[name] = SwgiServe(serve_binary, entry_lib or apps[name], mount, env)
        return servers[name]

    start.blog = str(blog)
    yield start
    for s in servers.values():
        s.stop()


def both(server, standalone, method, path, headers=None, body=None):
    a = request(server, method, path, headers=headers, body=body)
    b = request(server, method, path, headers=headers, body=body, port=standalone.port)
    return a, b


@pytest.mark.parametrize("method,path,headers,body", [
    ("GET", "/environ/x/y?q=1&r=%20s", {"X-Custom": "v", "Accept": "text/plain", "Cookie": "a=1"}, None),
    ("POST", "/environ", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1&b=2"),
    ("GET", "/environ/caf%C3%A9/%E9", {"Authorization": "Basic eA==", "Proxy": "http://evil/", "X-A_B": "dropped"}, None),
    ("GET", "/environ", {}, None),
    ("GET", "/environ/", {}, None),
])
def test_same_environ_as_apache(server, serve, method, path, headers, body):
    standalone = serve("EnvironDump", "/environ")
    (ra, da), (rb, db) = both(server, standalone, method, path, headers, body)
    a, b = json.loads(da), json.loads(db)
    for key in SHARED:
        assert a.get(key) == b.get(key), key
    http_a = {k: v for k, v in a.items() if k.startswith("HTTP_") and k != "HTTP_HOST"}
    http_b = {k: v for k, v in b.items() if k.startswith("HTTP_") and k != "HTTP_HOST"}
    assert http_a == http_b
    # Exact bytes of a PATH_INFO that is not UTF-8 (Apache also lists its own
    # PATH_TRANSLATED and mod_rewrite's SCRIPT_URL there).
    assert a.get("(undecodable)", {}).get("PATH_INFO") == b.get("(undecodable)", {}).get("PATH_INFO")
    assert b["SERVER_PORT"] == str(standalone.port) and a["SERVER_PORT"] == str(server.port)


def test_same_path_normalization_as_apache(server, serve):
    standalone = serve("EnvironDump", "/environ")
    for target in ["/environ//a/./b/../c", "/environ/%2e%2e/x", "/environ/a%2Fb", "/environ/../../x"]:
        payload = ("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % target).encode()
        out_a, out_b = raw(server, payload), raw(server, payload, port=standalone.port)
        status_a, status_b = out_a.split(b" ")[1], out_b.split(b" ")[1]
        assert status_a == status_b, (target, out_a[:100], out_b[:100])
        if status_a == b"200":
            env_a = json.loads(out_a.partition(b"\r\n\r\n")[2])
            env_b = json.loads(out_b.partition(b"\r\n\r\n")[2])
            assert env_a["PATH_INFO"] == env_b["PATH_INFO"], target


@pytest.mark.parametrize("name,mount,requests", [
    ("Hello", "/hello", [("GET", "/hello", None)]),
    ("Greetings", "/greetings", [("GET", "/greetings?name=Zoe", None), ("GET", "/greetings", None)]),
    ("ResultLength", "/resultlength", [("GET", "/resultlength?name=John", None)]),
    ("Dispatcher", "/dispatcher", [("GET", "/dispatcher/app1", None), ("GET", "/dispatcher/x", None)]),
    ("Methods", "/methods", [("GET", "/methods", None), ("POST", "/methods", b"12345"), ("PUT", "/methods", b"x")]),
    ("Errors", "/errors", [("GET", "/errors?divisor=5", None), ("GET", "/errors/fail", None)]),
])
def test_examples_answer_the_same(server, serve, name, mount, requests):
    standalone = serve(name, mount)
    for method, path, body in requests:
        (ra, da), (rb, db) = both(server, standalone, method, path, body=body)
        assert (ra.status, da) == (rb.status, db), path
        assert ra.getheader("Content-Type") == rb.getheader("Content-Type")


def test_blog_session_through_swgi_serve(serve):
    standalone = serve("Blog", "/blog", env=[("BLOG_DIR", serve.blog)])

    def call(method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", standalone.port, timeout=10)
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()

    assert call("PUT", "/blog/test1", b"first")[0] == 201
    assert call("PUT", "/blog/test1", b"second")[0] == 200
    assert b"second" in call("GET", "/blog/test1?type=atom")[1]
    assert call("DELETE", "/blog/test1") == (204, b"")
    assert call("GET", "/blog/test1")[0] == 404


def test_streaming_through_swgi_serve(serve_binary, build):
    _, apps = build
    standalone = SwgiServe(serve_binary, apps["SWGITestApps"], "/stream", entry="stream")
    try:
        seen = timed_chunks(standalone, "/stream?n=3&delay=400", ["chunk 1", "chunk 2", "chunk 3"])
        times = [t for t, _ in seen]
        assert len(times) == 3 and times[0] < 0.35 and times[2] - times[0] > 0.6, times
    finally:
        standalone.stop()


@pytest.mark.parametrize("name", ["Slow", "Slow-static"])
def test_an_async_application_through_swgi_serve(serve_binary, build, name):
    """Slow, an async application, streams its chunks one by one: as built
    by default, and built static (its own Swift runtime, beside the one
    swgi-serve runs on, its jobs scheduled on swgi-serve's event loop)."""
    _, apps = build
    slow = SwgiServe(serve_binary, apps[name], "/slow")
    try:
        seen = timed_chunks(slow, "/slow?count=3&delay=400", ["chunk 1 of 3", "chunk 2 of 3", "chunk 3 of 3"])
        times = [t for t, _ in seen]
        assert len(times) == 3 and times[0] < 0.35 and times[2] - times[0] > 0.6, times
        resp, data = request(slow, "GET", "/slow?count=2&delay=0")
        assert resp.status == 200 and data == b"chunk 1 of 2\nchunk 2 of 2\n"
    finally:
        slow.stop()


@pytest.mark.parametrize("entry,method,path,size,expect", [
    ("echo", "POST", "/", 10 << 20, b"bytes=10485760"),
    ("misbehave", "GET", "/?how=throw-before", None, 500),
    ("misbehave", "GET", "/?how=crlf-header", None, 500),
])
def test_test_apps_through_swgi_serve(serve_binary, build, entry, method, path, size, expect):
    _, apps = build
    body = b"x" * size if size else None
    standalone = SwgiServe(serve_binary, apps["SWGITestApps"], entry=entry)
    try:
        resp, data = request(standalone, method, path, body=body)
    finally:
        log = standalone.stop()
    if isinstance(expect, int):
        assert resp.status == expect and b"evil" not in data
        assert "failed" in log
    else:
        assert expect in data


def test_bad_library_is_a_clear_error(serve_binary, c_fixtures):
    result = subprocess.run([serve_binary, "--port", str(free_port()), c_fixtures["wrong_abi"]],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "built for SWGI ABI version 999" in result.stderr
    result = subprocess.run([serve_binary, "--port", str(free_port()), "/nonexistent/libX.so"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "cannot load SWGI application /nonexistent/libX.so" in result.stderr


# Async applications run on swgi-serve's event loops (handle_async): no pool
# thread per request, reads and writes that await instead of blocking.

@pytest.fixture
def async_serve(serve_binary, build):
    _, apps = build
    started = []

    def start(options=()):
        server = SwgiServe(serve_binary, apps["SWGITestApps"], entry="async", options=options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_async_application_runs_on_the_event_loop(async_serve):
    """Every step of the task ran on the thread that called the application
    (an event loop), and no pool of threads was started for it."""
    server = async_serve()
    resp, data = request(server, "GET", "/?case=threads")
    assert resp.status == 200 and data.startswith(b"same_thread=true"), data
    # main, 2 event loops, the timer's few libdispatch threads; the pool's 16
    # threads would make it over 20.
    assert server.status("Threads") < 12, server.status("Threads")


def test_async_requests_hold_no_thread(async_serve):
    """200 requests that each sleep 500 ms, at once, with --threads 1: all
    answered in about the time of one (a thread per request would take
    100 s)."""
    server = async_serve(options=["--threads", "1"])
    results = []

    def one():
        try:
            results.append(request(server, "GET", "/?case=sleep&ms=500"))
        except Exception as e:  # collected and reported below
            results.append(e)

    start = time.time()
    threads = [threading.Thread(target=one) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.time() - start
    assert len(results) == 200
    assert all(not isinstance(r, Exception) and r[0].status == 200 and r[1] == b"slept 500 ms\n" for r in results), \
        [r for r in results if isinstance(r, Exception)][:3]
    assert elapsed < 10, elapsed


def test_async_reads_await_the_body(async_serve):
    """A 10 MiB body read with awaited reads (the loop pauses the socket when
    1 MiB is waiting), and a small form read with a sync read: a body up to
    1 MiB arrives whole before the application starts."""
    server = async_serve()
    # 10 MiB streams; exactly 1 MiB (the most that arrives whole first) does not.
    for body in [bytes(range(256)) * (40 * 1024), bytes(range(256)) * 4096]:
        resp, data = request(server, "POST", "/?case=echo", body=body)
        assert resp.status == 200 and data == b"bytes=%d sum=%d\n" % (len(body), sum(body) & 0xffffffff)
    resp, data = request(server, "POST", "/?case=form", body=b"a=1&b=x%20y",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 200 and data == b"a=1&b=x y\n"


def test_a_sync_read_that_would_wait_is_a_clear_error(async_serve):
    """A streamed body (chunked, arriving after the application started) read
    without await: the loop cannot wait, so the read fails, the client gets
    500 and the log says to await."""
    server = async_serve()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /?case=form HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)
        s.sendall(b"3\r\na=1\r\n0\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 500 "), reply[:200]
    log = server.log()
    assert "read without await" in log and "try await environ.input.read()" in log, log


def test_async_output_is_paced_by_the_client(async_serve):
    """A producer of 256 MiB as fast as it can, to a client that does not read
    for a second: the task waits for the socket (wait_writable) instead of
    queueing the body in memory; then every byte arrives."""
    server = async_serve()
    before = server.status("VmRSS")
    total = 256 << 20
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /?case=flood&mb=256 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        time.sleep(1.0)
        during = server.status("VmRSS")
        received = 0
        while chunk := s.recv(1 << 20):
            received += len(chunk)
    assert during - before < 32 * 1024, (before, during)
    assert received > total, received


def test_client_disconnect_cancels_the_task(serve_binary, build):
    """Slow on the event loop: the client leaves after two chunks; the next
    write fails, the task is cancelled and Slow's cancellation path runs."""
    _, apps = build
    slow = SwgiServe(serve_binary, apps["Slow"], "/slow")
    try:
        with socket.create_connection(("127.0.0.1", slow.port), timeout=10) as s:
            s.sendall(b"GET /slow?count=50&delay=100 HTTP/1.1\r\nHost: t\r\n\r\n")
            buf = b""
            while b"chunk 2 of 50" not in buf:
                buf += s.recv(65536)
        deadline = time.time() + 5
        while "cancelled after" not in slow.log() and time.time() < deadline:
            time.sleep(0.05)
        log = slow.log()
        assert "the client has gone: the request's task is cancelled" in log, log
        assert "Slow: cancelled after" in log, log
        resp, data = request(slow, "GET", "/slow?count=2&delay=0")  # still serving
        assert resp.status == 200
    finally:
        slow.stop()


def test_async_requests_leave_nothing_behind(serve_binary, build):
    """50,000 async requests on the event loop (pipelined, 1,000 at a time):
    the server's memory stays where it was (each request's host connection
    and executor are freed; a cycle between them once kept 360 bytes per
    request)."""
    _, apps = build
    server = SwgiServe(serve_binary, os.path.join(os.path.dirname(apps["Hello"]), "libSWGIBench.so"), entry="async")
    batch = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n" * 1000

    def burst(rounds):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            for _ in range(rounds):
                s.sendall(batch)
                seen, buf = 0, b""
                while seen < 1000:
                    buf += s.recv(1 << 20)
                    seen = buf.count(b"Hello world!\n")
    try:
        burst(10)
        before = server.status("VmRSS")
        burst(50)
        after = server.status("VmRSS")
    finally:
        server.stop()
    assert after - before < 4 * 1024, (before, after)
