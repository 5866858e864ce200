"""Static files through Apache: a file bucket (sendfile), conditional and
range requests, and nothing outside the folder."""
import hashlib

from client import get, raw, request


def test_small_file(server, mark):
    resp, data = get(server, "/files/hello.txt")
    assert resp.status == 200 and data == b"hello, world\n"
    assert resp.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert resp.getheader("Content-Length") == "13"
    assert resp.getheader("Last-Modified").endswith(" GMT")
    assert "bytes of %s in a file bucket" % server.path("static", "hello.txt") in server.log_since(mark, "file bucket")


def test_large_file_goes_out_in_a_file_bucket(server, mark):
    resp, data = get(server, "/files/big.bin")
    expected = bytes(range(256)) * (5 * 4096)
    assert resp.status == 200 and len(data) == len(expected)
    assert hashlib.sha256(data).digest() == hashlib.sha256(expected).digest()
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert "5242880 bytes of" in server.log_since(mark, "file bucket")
    assert "SWGI validator" not in server.log_since(mark)


def test_head_conditional_and_ranges(server):
    out = raw(server, b"HEAD /files/big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Length: 5242880" in head and body == b""
    modified = get(server, "/files/hello.txt")[0].getheader("Last-Modified")
    resp, data = get(server, "/files/hello.txt", headers={"If-Modified-Since": modified})
    assert resp.status == 304 and data == b""
    resp, data = get(server, "/files/big.bin", headers={"Range": "bytes=256-511"})
    assert resp.status == 206 and data == bytes(range(256))
    assert resp.getheader("Content-Range") == "bytes 256-511/5242880"
    resp, _ = get(server, "/files/hello.txt", headers={"Range": "bytes=100-"})
    assert resp.status == 416


def test_nothing_outside_the_folder(server):
    for path in ["/files/.secret", "/files/escape.txt", "/files/%2e%2e/conf/htpasswd",
                 "/files/sub/../../conf/htpasswd", "/files/", "/files/missing"]:
        resp, data = get(server, path)
        assert resp.status in (400, 404), (path, resp.status)
        assert b"alice" not in data and b"hidden" not in data


def test_a_file_body_that_middleware_iterates(server, mark):
    resp, data = get(server, "/file-upper")
    assert resp.status == 200 and data == b"HELLO, WORLD\n"
    assert "file bucket" not in server.log_since(mark)
