"""swgi.input through Apache: streamed, exact, chunked, limited."""
import http.client

from client import raw, request
from harness import VALGRIND

BLOCK = bytes(range(256)) * 256  # 64 KiB


def upload(server, path, blocks, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    body = (BLOCK for _ in range(blocks))
    headers = {"Content-Type": "application/octet-stream"}
    if not chunked:
        headers["Content-Length"] = str(len(BLOCK) * blocks)
    conn.request("POST", path, body=body, headers=headers, encode_chunked=chunked)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def fields(data):
    return dict(part.split("=") for part in data.decode().split())


def test_100_mib_upload_is_streamed_not_held(server):
    blocks = 1600  # 100 MiB
    resp, data = upload(server, "/echo", blocks)
    assert resp.status == 200, data
    f = fields(data)
    assert int(f["bytes"]) == len(BLOCK) * blocks
    assert int(f["sum"]) == (sum(BLOCK) * blocks) % 2**32
    # The child's resident memory grew by far less than the body (under
    # valgrind, plus the 20 MB of freed blocks memcheck holds back).
    assert int(f["growth_kib"]) < 16 * 1024 + (20_000 if VALGRIND else 0), f


def test_reads_exactly_content_length(server):
    # A second request follows on the same connection: the first body must be
    # consumed exactly, no byte more.
    payload = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
               b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    out = raw(server, payload)
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert b"bytes=5 sum=532" in out
    assert out.endswith(b"Hello world!\n")


def test_readline_over_apache(server):
    resp, data = request(server, "POST", "/lines", body=b"one\ntwo two\n\nlast")
    assert data == b"[4][8][1][4]\n"


def test_chunked_body_when_enabled(server):
    resp, data = upload(server, "/chunked", 20, chunked=True)
    assert resp.status == 200
    assert int(fields(data)["bytes"]) == len(BLOCK) * 20


def test_chunked_body_refused_with_411_by_default(server, mark):
    resp, data = upload(server, "/echo", 2, chunked=True)
    assert resp.status == 411
    assert "SWGIChunkedRequest On" in server.log_since(mark, "SWGIChunkedRequest")


def test_limit_request_body_gives_413(server):
    resp, _ = request(server, "POST", "/limited", body=b"x" * 2000)
    assert resp.status == 413
    resp, data = request(server, "POST", "/limited", body=b"x" * 1000)
    assert resp.status == 200 and b"bytes=1000" in data


def test_limit_request_body_gives_413_for_chunked_bodies(server):
    resp, _ = upload(server, "/limited-chunked", 1, chunked=True)
    assert resp.status == 413
    resp, _ = request(server, "GET", "/hello")
    assert resp.status == 200
