"""Bad requests, sent raw over a socket: mod_swgi answers each as mod_wsgi
does for the same request in the same Apache (the swgi.test and wsgi.test
virtual hosts), nothing crashes, and the next request is served.

Part of the reliability suite (scripts/test --reliability runs these alone)."""
import re
import socket
import time

import pytest

from client import raw, still_serving

pytestmark = pytest.mark.reliability

# (name, request bytes with {host} and {path}, the status expected from both).
# None: the connection may close without an answer (both must agree).
CASES = [
    ("garbage request line", b"GARBAGE\r\n\r\n", 400),
    # Apache serves a request line with a higher minor or major version as HTTP/1.1.
    ("unknown HTTP version", b"GET {path} HTTP/9.9\r\nHost: {host}\r\n\r\n", 200),
    ("header without colon", b"GET {path} HTTP/1.1\r\nHost: {host}\r\nBadHeader\r\n\r\n", 400),
    ("NUL in a header value", b"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-A: a\x00b\r\n\r\n", 400),
    ("bare CR in a header value", b"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-A: a\rb\r\n\r\n", 400),
    # Apache unfolds a folded header line (RFC 7230 allows a server to).
    ("obsolete line folding", b"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-A: a\r\n b\r\n\r\n", 200),
    ("Latin-1 header value", b"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-A: caf\xe9\r\n\r\n", 200),
    ("200 headers", b"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n", 400),
    ("an 8 KiB header", b"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Big: " + b"x" * 8192 + b"\r\n\r\n", 400),
    ("two Content-Length values", b"POST {echo} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n"
     b"Content-Length: 4\r\n\r\nabcd", 400),
    # Transfer-Encoding wins (Apache drops the Content-Length), and a chunked
    # body is refused by default.
    ("Content-Length with Transfer-Encoding", b"POST {echo} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 411),
    ("negative Content-Length", b"POST {echo} HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n", 400),
    ("chunked body (refused by default)", b"POST {echo} HTTP/1.1\r\nHost: {host}\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 411),
    ("Expect: 100-continue", b"POST {echo} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n"
     b"Expect: 100-continue\r\n\r\nhello", 200),
    ("HTTP/1.0 without Host", b"GET {path} HTTP/1.0\r\n\r\n", 404),
    ("absolute-form request target", b"GET http://{host}{path}/x HTTP/1.1\r\nHost: {host}\r\n\r\n", 200),
    ("encoded slash in PATH_INFO", b"GET {path}/a%2Fb HTTP/1.1\r\nHost: {host}\r\n\r\n", 404),
    ("dot segments", b"GET {path}/a/../b/./c HTTP/1.1\r\nHost: {host}\r\n\r\n", 200),
    ("encoded dot segments", b"GET {path}/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: {host}\r\n\r\n", 400),
    ("unknown method", b"BREW {path} HTTP/1.1\r\nHost: {host}\r\n\r\n", 200),
]


def statuses(data):
    return [int(m) for m in re.findall(rb"^HTTP/1\.[01] (\d{3})", data, re.M)]


def answer(server, vhost, template):
    host = ("%s:%d" % (vhost, server.port2)).encode()
    payload = (template.replace(b"{host}", host).replace(b"{path}", b"/app")
               .replace(b"{echo}", b"/echo"))
    return raw(server, payload, port=server.port2, half_close=True)


@pytest.mark.parametrize("name,template,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_the_answer_mod_wsgi_gives(server, no_crash, name, template, expected):
    swgi = statuses(answer(server, "swgi.test", template))
    wsgi = statuses(answer(server, "wsgi.test", template))
    assert swgi[:1] == wsgi[:1], (name, swgi, wsgi)
    assert swgi[:1] == [expected] or (expected == 200 and swgi[-1:] == [200]), (name, swgi)
    still_serving(server)


def test_expect_continue_sends_100_before_the_body_is_read(server, no_crash):
    for vhost in ("swgi.test", "wsgi.test"):
        host = ("%s:%d" % (vhost, server.port2)).encode()
        with socket.create_connection(("127.0.0.1", server.port2), timeout=10) as s:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            first = s.recv(1024)
            assert first.startswith(b"HTTP/1.1 100 Continue"), (vhost, first)
            s.sendall(b"hello")
            rest = b""
            while b"bytes=" not in rest:
                rest += s.recv(1024)
            assert b"bytes=5" in rest


def test_pipelined_requests_are_answered_in_order(server, no_crash):
    host = ("swgi.test:%d" % server.port2).encode()
    one = b"GET /app/one HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    post = b"POST /echo HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 3\r\n\r\nabc"
    last = b"GET /app/two HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    data = raw(server, one + post + last, port=server.port2, half_close=True)
    assert statuses(data) == [200, 200, 200]
    assert data.index(b'"/one"') < data.index(b"bytes=3") < data.index(b'"/two"')


def test_body_shorter_than_content_length_times_out_and_loses_nothing(server, no_crash, mark):
    host = ("swgi.test:%d" % server.port2).encode()
    start = time.time()
    with socket.create_connection(("127.0.0.1", server.port2), timeout=20) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 100\r\n\r\nonly ten b")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    elapsed = time.time() - start
    # The vhost's Timeout is 3 s: Apache gives up reading and answers 408 or
    # closes; the application saw a read error, not a short body.
    assert 2.5 < elapsed < 15, elapsed
    assert statuses(data) in ([], [408], [400]), data[:200]
    assert "reading the request body failed" in server.log_since(mark, wait_for="reading the request body failed")
    still_serving(server)
