"""Applications that misbehave in the ways test_errors.py does not cover,
and bad chunked framing: each gets a proper answer, nothing crashes, and the
server keeps serving. Part of the reliability suite."""
import socket

import pytest

from client import get, raw, request, still_serving

pytestmark = pytest.mark.reliability



def test_only_empty_chunks_give_an_empty_body(server, no_crash, mark):
    resp, data = get(server, "/misbehave?how=empty-chunks")
    assert resp.status == 200 and data == b""
    assert "misbehave empty-chunks closed" in server.log_since(mark, wait_for="empty-chunks closed")
    still_serving(server)


def test_a_hundred_thousand_tiny_chunks_all_arrive(server, no_crash):
    resp, data = get(server, "/misbehave?how=tiny-chunks")
    assert resp.status == 200 and data == b"x" * 100_000
    still_serving(server)


def test_reading_past_the_end_keeps_returning_the_end(server, no_crash):
    resp, data = request(server, "POST", "/misbehave?how=read-past-end", body=b"a" * 1000)
    assert resp.status == 200 and data == b"first=1000 more=0\n"
    still_serving(server)


def test_a_client_that_gives_up_on_a_slow_application(server, no_crash, mark):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /misbehave?how=block HTTP/1.1\r\nHost: t\r\n\r\n")
        assert b"200 OK" in s.recv(4096)
    # The application's next write fails, it is stopped, close() runs once.
    log = server.log_since(mark, wait_for="misbehave block closed", timeout=10)
    assert log.count("misbehave block closed") == 1
    still_serving(server)


@pytest.mark.parametrize("body,expected", [
    (b"zz\r\nabc\r\n0\r\n\r\n", 400),                         # not a hex size
    (b"3\r\nabcdef\r\n0\r\n\r\n", 400),                       # more bytes than the size
    (b"FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n", 413),       # a size beyond any limit
], ids=["bad size", "wrong size", "huge size"])
def test_bad_chunked_framing(server, no_crash, mark, body, expected):
    out = raw(server, b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                      b"Connection: close\r\n\r\n" + body)
    assert out.startswith(b"HTTP/1.1 %d" % expected), out[:100]
    still_serving(server)


def test_chunked_body_without_its_last_chunk(server, no_crash, mark):
    # The client stops sending: the read fails when it closes its side.
    out = raw(server, b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
              half_close=True)
    assert out == b"" or out.startswith(b"HTTP/1.1 400"), out[:100]
    assert "reading the request body failed" in server.log_since(mark, wait_for="reading the request body failed")
    still_serving(server)


def test_a_client_that_leaves_in_the_middle_of_an_upload(server, no_crash, mark):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n")
        s.sendall(b"u" * 1_000_000)
        # Gone without the rest: a reset, not a clean end of the body.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    log = server.log_since(mark, wait_for="reading the request body failed", timeout=10)
    assert "reading the request body failed" in log
    # The application saw the read fail and stopped; nothing was answered to no one.
    assert "stopped: the request body could not be read" in server.log_since(mark, wait_for="stopped:")
    still_serving(server)


@pytest.mark.parametrize("prefix,validated", [
    ("/validated", True),            # SetEnv SWGI_VALIDATE 1
    ("/validated-apache", True),     # the same, with Apache's own environ functions
    ("/validated-off", False),       # SWGI_VALIDATE 0
    (None, False),                   # not set
])
@pytest.mark.parametrize("app", ["sync", "async"])
def test_swgi_validate_turns_the_validator_on(server, no_crash, mark, prefix, validated, app):
    """A 200 without Content-Type is served either way; with SWGI_VALIDATE
    1 the validator reports it in the error log (mod_swgi passes the
    variable's value in the request's flags, the application no longer
    looks it up)."""
    query = {"sync": "how=no-type", "async": "case=no-type"}[app]
    if prefix:
        path = "%s/%s?%s" % (prefix, app, query)
    else:
        path = {"sync": "/misbehave?", "async": "/async?"}[app] + query
    resp, data = get(server, path)
    assert resp.status == 200 and data == b"no type\n"
    # The validator's lines are logged while the request runs.
    log = server.log_since(mark, wait_for="SWGI validator" if validated else None)
    assert ("SWGI validator: no Content-Type header in a 200 response" in log) == validated, log
