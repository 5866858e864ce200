"""What mod_swgi refuses to trust: library files that another user owns or
that anyone may write (checked before dlopen, which runs their code)."""
import pytest

from client import get

pytestmark = pytest.mark.reliability


def test_a_library_owned_by_another_user_is_refused(server, mark):
    resp, _ = get(server, "/untrusted-owner/x")
    assert resp.status == 500
    log = server.log_since(mark, wait_for="refused")
    assert "untrusted/owner.so refused: it is owned by uid 65534" in log
    assert "SWGIAllowUntrustedFiles On accepts it" in log
    # The server goes on serving everyone else.
    resp, body = get(server, "/hello")
    assert resp.status == 200 and body == b"Hello world!\n"


def test_a_library_anyone_may_write_is_refused(server, mark):
    resp, _ = get(server, "/untrusted-mode")
    assert resp.status == 500
    assert "untrusted/mode.so refused: every user may write it" in server.log_since(mark, wait_for="refused")


def test_the_admin_may_allow_an_untrusted_library(server, mark):
    resp, _ = get(server, "/untrusted-allowed/x")
    assert resp.status == 200
    # Loaded there, the same file is still refused where it is not allowed.
    resp, _ = get(server, "/untrusted-owner/x")
    assert resp.status == 500


def test_the_allowance_cannot_come_from_htaccess(server, mark):
    resp, _ = get(server, "/htaccess-try/owner.so")
    assert resp.status == 500
    assert "SWGIAllowUntrustedFiles not allowed here" in server.log_since(mark, wait_for="not allowed")


def test_the_blog_stays_in_its_directory(server):
    from client import request
    resp, _ = request(server, "PUT", "/blog/.sneaky", body=b"x",
                      headers={"Content-Type": "text/plain"})
    assert resp.status == 400
    for path in ["/blog/..%5C..%5Chttpd.conf", "/blog/.tmp", "/blog/%2e%2e%2fconf%2fhtpasswd"]:
        resp, data = request(server, "GET", path)
        assert resp.status in (400, 404), (path, resp.status)
        assert b"alice:" not in data
