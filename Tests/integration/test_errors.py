"""Failure is loud and local: a proper status, one log line naming the
cause, nothing invalid reaching the client, and the server keeps serving."""
import http.client
import pytest

from client import get, raw, still_serving


def log_lines(server, mark, needle):
    return [l for l in server.log_since(mark, needle).splitlines() if needle in l]



def test_throw_before_headers_gives_500_and_a_log_line(server, mark):
    resp, data = get(server, "/misbehave?how=throw-before")
    assert resp.status == 500
    assert b"Internal Server Error" in data
    lines = log_lines(server, mark, "boom before headers")
    assert len(lines) == 1
    assert "libSWGITestApps.so failed" in lines[0] and "[swgi:error]" in lines[0]
    still_serving(server)


def test_throw_after_headers_cuts_the_connection(server, mark):
    out = raw(server, b"GET /misbehave?how=throw-after HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"Transfer-Encoding: chunked" in head
    assert b"partial" in body
    assert not body.endswith(b"0\r\n\r\n"), "a cut response must not look complete"
    lines = log_lines(server, mark, "boom after headers")
    assert len(lines) == 1 and "connection cut" in lines[0]
    assert "misbehave throw-after closed" in server.log_since(mark, "closed")
    # http.client sees an incomplete body, not a complete one.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/misbehave?how=throw-after")
    with pytest.raises(http.client.IncompleteRead):
        conn.getresponse().read()
    conn.close()
    still_serving(server)


@pytest.mark.parametrize("how,cause", [
    ("bad-status", "invalid status"),
    ("crlf-header", "X-Injected"),
    ("ctl-header", "X-Bell"),
    ("hop-header", "hop-by-hop header"),
    ("bad-name", "invalid header name"),
    ("twice", "second time without excInfo"),
    ("no-start", "before calling startResponse"),
    ("short", "fewer than its Content-Length"),
])
def test_invalid_responses_give_500_and_nothing_of_them(server, mark, how, cause):
    out = raw(server, ("GET /misbehave?how=%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % how).encode())
    assert out.startswith(b"HTTP/1.1 500 "), out[:200]
    assert b"evil" not in out and b"X-Injected" not in out and b"X-Bell" not in out
    assert b"no start" not in out
    lines = log_lines(server, mark, cause)
    assert len(lines) == 1, server.log_since(mark)
    assert "\r" not in lines[0]
    still_serving(server)


def test_close_is_called_when_the_application_fails(server, mark):
    get(server, "/misbehave?how=no-start")
    assert server.log_since(mark, "closed").count("misbehave no-start closed") == 1


def test_exc_info_replaces_the_status(server):
    resp, data = get(server, "/misbehave?how=exc-info")
    assert resp.status == 503 and data == b"replaced\n"


def test_output_beyond_content_length_is_cut_and_logged(server, mark):
    resp, data = get(server, "/misbehave?how=long")
    assert resp.status == 200 and data == b"01234"
    assert len(log_lines(server, mark, "more bytes than its Content-Length of 5")) == 1
    still_serving(server)


def test_streamed_body_shorter_than_content_length_is_cut(server, mark):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/misbehave?how=short-streamed")
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    assert len(log_lines(server, mark, "fewer than its Content-Length of 10")) == 1
    still_serving(server)


@pytest.mark.parametrize("path,library,reason", [
    ("/missing", "libMissing.so", "no such file"),
    ("/not-swgi", "libno_entry.so", "not an SWGI application: it exports no entry point 'swgi_entry_application'"),
    ("/wrong-abi", "libwrong_abi.so", "built for SWGI ABI version 999, but this mod_swgi speaks version 1"),
    ("/garbage", "garbage.so", "invalid ELF header"),
    ("/wrong-entry", "libHello.so", "exports no entry point 'swgi_entry_nosuch'"),
])
def test_bad_libraries_give_500_and_one_line_naming_file_and_reason(server, mark, path, library, reason):
    for attempt in range(2):  # the second time, from the cache of failures
        start = server.log_size()
        resp, _ = get(server, path)
        assert resp.status == 500
        lines = log_lines(server, start, reason)
        assert len(lines) == 1, server.log_since(start)
        assert "cannot load SWGI application %s" % server.path("apps", library) in lines[0]
        assert len([l for l in server.log_since(start).splitlines() if "[swgi:" in l]) == 1
    still_serving(server)


def test_server_keeps_serving_everyone_during_failures(server):
    import concurrent.futures

    paths = ["/misbehave?how=throw-before", "/hello", "/missing", "/misbehave?how=throw-after",
             "/greetings", "/wrong-abi"] * 10

    def fetch(path):
        try:
            resp, data = get(server, path)
            return path, resp.status, data
        except http.client.IncompleteRead:
            return path, "cut", b""

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(fetch, paths))
    for path, status, data in results:
        if path == "/hello":
            assert (status, data) == (200, b"Hello world!\n")
        elif path == "/greetings":
            assert (status, data) == (200, b"My name is Alex")
        elif "throw-after" in path:
            assert status == "cut"
        else:
            assert status == 500
