"""Every seed example through Apache, doing what its tutorial does, with the
validator checking both sides (SetEnv SWGI_VALIDATE 1)."""
import concurrent.futures
import http.client
import os
import re
import xml.etree.ElementTree as ET

import pytest

from client import get, request


@pytest.fixture(autouse=True)
def no_violations(server):
    start = server.log_size()
    yield
    log = server.log_since(start)
    assert "SWGI validator" not in log, log


@pytest.mark.parametrize("path", ["/hello", "/hello-static"])
def test_hello(server, path):
    """Hello as built by default, and with the Swift runtime linked in
    statically (README, "Deploying")."""
    resp, data = get(server, path)
    assert (resp.status, data) == (200, b"Hello world!\n")


def test_result_length_appends_the_length(server):
    resp, data = get(server, "/resultlength?name=John")
    assert resp.status == 200
    assert data == b"My name is John\n\nResult length: 15"
    assert get(server, "/resultlength")[1] == b"My name is Alex\n\nResult length: 15"


def test_dispatcher_and_simple_middleware(server):
    assert get(server, "/dispatcher/app1")[1] == b"Hello World!"
    assert get(server, "/dispatcher/anything")[1] == b"Hello World! -- Modified by middleware"
    assert get(server, "/dispatcher")[1] == b"Hello World! -- Modified by middleware"


def test_methods(server):
    assert get(server, "/methods")[1] == b"You sent a GET\n"
    resp, data = request(server, "POST", "/methods", body=b"x" * 42)
    assert data == b"You sent a POST of 42 bytes\n"
    resp, data = request(server, "PUT", "/methods", body=b"x")
    assert resp.status == 405
    assert resp.getheader("Allow") == "GET, HEAD, POST"


def test_errors_become_a_500_page_and_a_log_line(server, mark):
    assert get(server, "/errors?divisor=4")[1] == b"100 / 4 = 25\n"
    resp, data = get(server, "/errors/fail")
    assert resp.status == 500
    assert data == b"Internal Server Error: something went wrong"
    assert "ErrorHandler: " in server.log_since(mark, "something went wrong")
    resp, data = get(server, "/errors?divisor=0")
    assert resp.status == 500 and data == b"Internal Server Error: division by zero"


class Browser:
    """Keeps cookies between requests, one new connection each (so that
    under prefork and worker requests land in different processes)."""

    def __init__(self, server):
        self.server = server
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        resp, data = request(self.server, method, path, body=body, headers=headers)
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return resp, data


def test_counter_counts_visits_in_a_session(server):
    browser = Browser(server)
    for n in range(1, 6):
        resp, data = browser.request("GET", "/counter")
        assert data == ("You have been here %d times!\n" % n).encode()
    assert "HttpOnly" in resp.getheader("Set-Cookie")
    # Another visitor starts at 1; a forged cookie is a new session.
    assert Browser(server).request("GET", "/counter")[1] == b"You have been here 1 times!\n"
    value = browser.cookies["swgi_session"]
    browser.cookies["swgi_session"] = ("N" if value[0] != "N" else "M") + value[1:]  # payload changed
    assert browser.request("GET", "/counter")[1] == b"You have been here 1 times!\n"


def test_guess_the_number(server):
    browser = Browser(server)
    resp, data = browser.request("GET", "/guess")
    assert resp.status == 200 and b'<form method="POST">' in data
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert b"You didn't guess" in browser.request("POST", "/guess", b"", form)[1]
    assert b"not a number" in browser.request("POST", "/guess", b"myparam=abc", form)[1]
    low, high = 1, 100
    for attempt in range(8):
        guess = (low + high) // 2
        data = browser.request("POST", "/guess", ("myparam=%d" % guess).encode(), form)[1]
        if b"You guessed correctly" in data:
            break
        if b"higher" in data:
            low = guess + 1
        else:
            assert b"lower" in data
            high = guess - 1
    else:
        pytest.fail("binary search did not find the number in 8 tries")
    assert browser.request("PUT", "/guess", b"x")[0].status == 405


def test_blog_as_the_tutorials_curl_session(server):
    assert request(server, "PUT", "/blog/test1", body=b"My first entry")[0].status == 201
    resp, data = request(server, "PUT", "/blog/test1", body=b"My first entry, updated")
    assert resp.status == 200 and b"My first entry, updated" in data
    resp, data = get(server, "/blog/")
    assert resp.status == 200 and b"test1" in data
    resp, data = get(server, "/blog/test1")
    assert resp.status == 200 and b"My first entry, updated" in data
    resp, data = request(server, "DELETE", "/blog/test1")
    assert resp.status == 204 and data == b""
    assert get(server, "/blog/test1")[0].status == 404
    assert request(server, "DELETE", "/blog/test1")[0].status == 404


def test_blog_requests_that_are_wrong(server):
    assert request(server, "PUT", "/blog/", body=b"x")[0].status == 400
    assert request(server, "PUT", "/blog/nobody")[0].status == 411
    assert request(server, "PUT", "/blog/.hidden", body=b"x")[0].status == 400
    assert request(server, "PUT", "/blog/a..b/c", body=b"x")[0].status == 400
    assert request(server, "PUT", "/blog/..%2F..%2Fescape", body=b"x")[0].status == 404  # Apache: encoded slash
    assert request(server, "POST", "/blog/x", body=b"x")[0].status == 405
    assert sorted(os.listdir(server.path("blog"))) == []


def test_blog_renderings(server):
    request(server, "PUT", "/blog/Hello-World", body="Tom & Jerry <script>alert(1)</script> ü".encode())
    try:
        cases = {"xhtml": "application/xhtml+xml", "xml": "application/xml", "atom": "application/atom+xml"}
        for kind, content_type in cases.items():
            for path in ("/blog/?type=" + kind, "/blog/Hello-World?type=" + kind):
                resp, data = get(server, path)
                assert resp.status == 200
                assert resp.getheader("Content-Type").startswith(content_type)
                assert b"<script>" not in data and b"&lt;script&gt;" in data
                root = ET.fromstring(data)  # well-formed XML
        atom = ET.fromstring(get(server, "/blog/?type=atom")[1])
        ns = {"a": "http://www.w3.org/2005/Atom"}
        assert atom.tag == "{http://www.w3.org/2005/Atom}feed"
        for required in ("a:title", "a:id", "a:updated", "a:author/a:name"):
            assert atom.find(required, ns) is not None, required
        entry = atom.find("a:entry", ns)
        assert entry.find("a:title", ns).text == "Hello World"
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", entry.find("a:updated", ns).text)
        assert entry.find("a:content", ns).text.startswith("Tom & Jerry <script>")
        link = entry.find("a:link", ns).get("href")
        assert link == "http://127.0.0.1:%d/blog/Hello-World?type=xhtml" % server.port
    finally:
        request(server, "DELETE", "/blog/Hello-World")


def test_blog_concurrent_puts_never_tear_an_entry(server):
    bodies = [bytes([65 + i]) * 300_000 for i in range(12)]

    def put(body):
        return request(server, "PUT", "/blog/contended", body=body)[0].status

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(put, bodies))
    assert set(statuses) <= {200, 201} and 201 in statuses
    for _ in range(5):
        text = get(server, "/blog/contended?type=xml")[1]
        stored = open(server.path("blog", "contended.txt"), "rb").read()
        assert stored in bodies
    assert not [f for f in os.listdir(server.path("blog")) if f.startswith(".tmp")]
    request(server, "DELETE", "/blog/contended")
