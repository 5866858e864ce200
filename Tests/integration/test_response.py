"""Responses through Apache: lazy headers, Content-Length, HEAD, streaming,
close(), 204/304, several applications side by side."""
import gzip
import re
import socket
import time

from client import get, get_all, raw, request, timed_chunks


def test_hello_has_content_length(server):
    resp, data = get(server, "/hello")
    assert resp.status == 200
    assert data == b"Hello world!\n"
    assert resp.getheader("Content-Length") == "13"
    assert resp.getheader("Content-Type") == "text/plain"


def test_content_type_and_length_in_any_case_are_apaches_own(server):
    out = raw(server, b"GET /header-case HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    head += b"\r\n"
    # Written by Apache from the values (ap_set_content_type and
    # ap_set_content_length), once each, in its own spelling.
    assert b"\r\nContent-Type: application/x-swgi-case\r\n" in head, head
    assert b"\r\nContent-Length: 100\r\n" in head, head
    assert head.lower().count(b"content-type:") == 1 and head.lower().count(b"content-length:") == 1, head
    assert b"\r\nx-Lower: kept\r\n" in head, head
    assert body == b"case\n" * 20
    # A filter chosen by type (AddOutputFilterByType) sees the type.
    resp, data = get(server, "/header-case", headers={"Accept-Encoding": "gzip"})
    assert resp.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(data) == b"case\n" * 20


def test_greetings(server):
    assert get(server, "/greetings")[1] == b"My name is Alex"
    assert get(server, "/greetings?name=John")[1] == b"My name is John"
    assert get(server, "/greetings?name=")[1] == b"My name is Alex"


def test_head_sends_headers_and_no_body(server):
    out = raw(server, b"HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"Content-Length: 13" in head
    assert body == b""


def test_each_chunk_reaches_the_client_as_it_is_produced(server):
    seen = timed_chunks(server, "/stream?n=4&delay=400", ["chunk 1", "chunk 2", "chunk 3", "chunk 4"])
    assert [m for _, m in seen] == ["chunk 1", "chunk 2", "chunk 3", "chunk 4"]
    times = [t for t, _ in seen]
    assert times[0] < 0.35, times
    for earlier, later in zip(times, times[1:]):
        assert later - earlier > 0.25, times


def test_streamed_response_is_chunked(server):
    out = raw(server, b"GET /stream?n=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in out
    assert out.endswith(b"0\r\n\r\n")


def test_close_is_called_once_on_a_complete_response(server, mark):
    get(server, "/stream?n=3&id=complete-%s" % server.mpm)
    log = server.log_since(mark, "closed")
    assert log.count("stream complete-%s closed after 3 chunks" % server.mpm) == 1


def test_client_disconnect_mid_stream(server, mark):
    tag = "gone-%s" % server.mpm
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(("GET /stream?n=200&delay=50&id=%s HTTP/1.1\r\nHost: t\r\n\r\n" % tag).encode())
    assert b"chunk 1" in s.recv(4096)
    s.close()
    log = server.log_since(mark, "stream %s closed" % tag, timeout=15)
    closes = re.findall(r"stream %s closed after (\d+) chunks" % tag, log)
    assert len(closes) == 1, log
    assert int(closes[0]) < 200
    time.sleep(0.3)
    assert server.log_since(mark).count("stream %s closed" % tag) == 1
    assert get(server, "/hello")[0].status == 200


def test_204_and_304_have_no_body(server):
    for code in ("204", "304"):
        out = raw(server, ("GET /status?status=%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % code).encode())
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(("HTTP/1.1 %s" % code).encode()), head
        assert b"X-Status: " + code.encode() in head
        assert body == b"", body


def test_other_statuses_pass_through(server):
    resp, data = get(server, "/status?status=201")
    assert resp.status == 201 and resp.reason == "Created" and data == b"body for 201\n"
    resp, data = get(server, "/status?status=404")
    assert resp.status == 404 and data == b"body for 404\n"


def test_reason_phrases_are_the_applications(server):
    # Apache's own line for the code ("200 OK") and the application's own
    # reason, for a known code and for one Apache has no line for.
    for query, status, reason in (("status=200", 200, "OK"), ("status=200&reason=Fine", 200, "Fine"),
                                  ("status=404&reason=Nowhere", 404, "Nowhere"),
                                  ("status=299", 299, "Other"), ("status=201&reason=OK", 201, "OK")):
        resp, data = get(server, "/status?" + query)
        assert (resp.status, resp.reason) == (status, reason), query
        assert data == b"body for %d\n" % status


def test_write_function_and_swgi_errors(server, mark):
    resp, data = get(server, "/writes")
    assert data == b"one\ntwo\nthree\n"
    log = server.log_since(mark, "unterminated last line")
    line = [l for l in log.splitlines() if "note from the application" in l]
    assert len(line) == 1 and "[client 127.0.0.1:" in line[0] and "[swgi:error]" in line[0]
    assert "unterminated last line" in log


def test_entry_point_from_location(server):
    resp, data = get(server, "/by-location?status=201")
    assert resp.status == 201


def test_two_applications_and_one_library_at_two_urls_side_by_side(server):
    paths = ["/hello", "/hello-again", "/greetings?name=Ann", "/environ/p"] * 25

    results = get_all(server, paths, workers=8)
    for path, status, data in results:
        assert status == 200, path
        if path.startswith("/hello"):
            assert data == b"Hello world!\n"
        elif path.startswith("/greetings"):
            assert data == b"My name is Ann"
        else:
            assert b'"PATH_INFO": "/p"' in data


def test_streaming_through_mod_deflate(server):
    import zlib

    conn_headers = "Accept-Encoding: gzip\r\n"
    seen = []
    start = time.time()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        s.sendall(("GET /deflated?n=3&delay=400 HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n"
                   % conn_headers).encode())
        data = b""
        while True:
            part = s.recv(65536)
            if not part:
                break
            seen.append(time.time() - start)
            data += part
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head
    # Undo the chunked framing, then the gzip: every chunk is there.
    raw_body, rest = b"", body
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        raw_body, rest = raw_body + rest[:n], rest[n + 2:]
    assert zlib.decompress(raw_body, 16 + zlib.MAX_WBITS) == b"chunk 1\nchunk 2\nchunk 3\n"
    # FLUSH after each chunk makes the compressor emit it at once.
    assert seen[-1] - seen[0] > 0.6, seen


def test_head_is_seen_as_get_when_a_filter_needs_the_body(server):
    # mod_wsgi's rule (WSGIMapHEADToGet Auto): with a content filter, HEAD
    # runs as GET so the filter sees the body it would see for GET.
    import json

    resp, data = request(server, "GET", "/deflated-environ")
    assert json.loads(data)["REQUEST_METHOD"] == "GET"
    out = raw(server, b"HEAD /deflated-environ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"200 OK" in head and body == b""


def test_head_leaves_with_the_first_non_empty_chunk(server):
    # The application starts the response at once, then produces an empty
    # chunk after 600 ms: nothing, not even the status line, may leave before.
    seen = timed_chunks(server, "/stream?n=1&lead=600", ["HTTP/1.1 200", "chunk 1"])
    assert [m for _, m in seen] == ["HTTP/1.1 200", "chunk 1"]
    assert seen[0][0] > 0.5, seen


def test_unread_request_body_does_not_break_keep_alive(server):
    payload = (b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nGET /evil H"
               b"GET /greetings?name=Kim HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    out = raw(server, payload)
    assert out.count(b"HTTP/1.1 200 ") == 2
    assert b"Hello world!\n" in out and out.endswith(b"My name is Kim")
