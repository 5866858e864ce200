"""Small HTTP helpers: http.client for ordinary requests, raw sockets where
the test must see the bytes (streaming, cut connections)."""
import concurrent.futures
import http.client
import json
import socket
import time


def request(server, method, path, body=None, headers=None, port=None, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", port or server.port, timeout=30)
    hdrs = dict(headers or {})
    if host:
        hdrs["Host"] = "%s:%d" % (host, port or server.port)
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def get(server, path, **kw):
    return request(server, "GET", path, **kw)


def get_all(server, paths, workers=6):
    """GETs `paths`, `workers` at a time: [(path, status, body)] in order."""
    def fetch(path):
        resp, data = get(server, path)
        return path, resp.status, data

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fetch, paths))


def environ(server, path="/environ", **kw):
    resp, data = request(server, kw.pop("method", "GET"), path, **kw)
    assert resp.status == 200, (resp.status, data)
    return json.loads(data)


def raw(server, payload, port=None, timeout=10, half_close=False):
    """Sends bytes on a new connection and returns all bytes until the server
    closes (or resets, or goes quiet for `timeout`). With half_close, the
    client's side is shut after the payload, as a client that sent all it will."""
    with socket.create_connection(("127.0.0.1", port or server.port), timeout=timeout) as s:
        s.sendall(payload)
        if half_close:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def still_serving(server):
    """The server answers the next request, on a new connection."""
    resp, data = get(server, "/hello")
    assert resp.status == 200 and data == b"Hello world!\n"


def timed_chunks(server, path, expect, timeout=20):
    """GETs path (Connection: close) and returns [(seconds, marker)] for each
    marker in `expect`, stamped when its bytes arrived."""
    start = time.time()
    seen = []
    buf = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path).encode())
        while len(seen) < len(expect):
            data = s.recv(65536)
            if not data:
                break
            buf += data
            for marker in expect[len(seen):]:
                if marker.encode() in buf:
                    seen.append((time.time() - start, marker))
                else:
                    break
    return seen
