"""The environ mod_swgi gives, checked against what mod_wsgi gives for the
same request, and key by key against DESIGN.md's list."""
import gzip
import json
import ssl
import http.client

import pytest

from client import environ, get, request

# Keys that differ between the two vhosts by construction (host name, file,
# connection), and the servers' own namespaces.
BY_CONSTRUCTION = {"HTTP_HOST", "SERVER_NAME", "SCRIPT_FILENAME", "REMOTE_PORT"}


def own_keys(env, prefixes):
    return {k: v for k, v in env.items() if not k.startswith(prefixes)}


def compare_with_mod_wsgi(server, method, path, headers=None, body=None):
    wsgi = environ(server, path, method=method, port=server.port2, host="wsgi.test",
                   headers=headers, body=body)
    swgi = environ(server, path, method=method, port=server.port2, host="swgi.test",
                   headers=headers, body=body)
    a = own_keys(wsgi, ("wsgi.", "mod_wsgi.", "apache."))
    b = own_keys(swgi, ("swgi.", "mod_swgi.", "(undecodable)"))
    assert sorted(a) == sorted(b), "keys differ: only mod_wsgi %s, only mod_swgi %s" % (
        sorted(set(a) - set(b)), sorted(set(b) - set(a)))
    for key in a:
        if key not in BY_CONSTRUCTION:
            assert a[key] == b[key], key
    assert wsgi["SERVER_NAME"] == "wsgi.test" and swgi["SERVER_NAME"] == "swgi.test"
    return wsgi, swgi


def test_same_keys_and_values_as_mod_wsgi_for_a_get(server):
    headers = {"X-Custom": "one", "Accept": "text/html", "Proxy": "http://evil.test/",
               "Authorization": "Basic YWxpY2U6c2VjcmV0", "X-Under_Score": "dropped",
               "Cookie": "a=1; b=2"}
    wsgi, swgi = compare_with_mod_wsgi(server, "GET", "/app/some/path?x=1&y=%20z+w", headers)
    assert "HTTP_PROXY" not in swgi and "HTTP_AUTHORIZATION" not in swgi
    assert swgi["QUERY_STRING"] == "x=1&y=%20z+w"
    assert swgi["SCRIPT_NAME"] == "/app" and swgi["PATH_INFO"] == "/some/path"


def test_same_keys_and_values_as_mod_wsgi_for_a_post(server):
    compare_with_mod_wsgi(server, "POST", "/app", {"Content-Type": "application/x-www-form-urlencoded"},
                          body=b"a=1&b=2")


def test_same_values_as_mod_wsgi_for_non_ascii_paths(server):
    wsgi, swgi = compare_with_mod_wsgi(server, "GET", "/app/caf%C3%A9/%E2%9C%93")
    assert swgi["PATH_INFO"] == "/café/✓"


def test_design_keys_are_all_present(server):
    env = environ(server, "/environ/x?q=1")
    for key in ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
                "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "REQUEST_URI",
                "REQUEST_SCHEME", "DOCUMENT_ROOT", "SERVER_SOFTWARE", "SCRIPT_FILENAME",
                "GATEWAY_INTERFACE", "SERVER_ADDR", "SERVER_ADMIN", "SERVER_SIGNATURE",
                "PATH_TRANSLATED", "CONTEXT_PREFIX", "CONTEXT_DOCUMENT_ROOT",
                "swgi.version", "swgi.url_scheme", "swgi.input", "swgi.errors",
                "swgi.multithread", "swgi.multiprocess", "swgi.run_once", "swgi.file_wrapper",
                "mod_swgi.process_group", "mod_swgi.request_id", "mod_swgi.request_start",
                "mod_swgi.application_path"]:
        assert key in env, key
    assert env["swgi.version"] == [1, 0]
    assert env["swgi.input"] == "<RequestInput>" and env["swgi.errors"] == "<ErrorStream>"
    assert env["swgi.run_once"] is False
    assert env["swgi.multiprocess"] is True
    assert env["swgi.multithread"] is (server.mpm != "prefork")
    assert env["mod_swgi.application_path"] == server.path("apps", "libEnvironDump.so")
    assert env["SCRIPT_FILENAME"] == server.path("apps", "libEnvironDump.so")
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_ADMIN"] == "admin@example.test"
    assert env["REQUEST_URI"] == "/environ/x?q=1"
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert "mod_swgi/" in env["SERVER_SOFTWARE"]


def test_script_name_and_path_info_for_an_alias(server):
    cases = {
        "/environ": ("/environ", ""),
        "/environ/": ("/environ", "/"),
        "/environ/a/b": ("/environ", "/a/b"),
        "/environ/a%20b/c%2Bd": ("/environ", "/a b/c+d"),
        "/environ//a///b": ("/environ", "/a/b"),
        "/environ/a/../b": ("/environ", "/b"),
    }
    for path, (script_name, path_info) in cases.items():
        env = environ(server, path)
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == (script_name, path_info), path
    resp, _ = get(server, "/environment")
    assert resp.status == 404


def test_alias_match_substitutes_and_splits_at_the_match(server):
    env = environ(server, "/by-name/environ/rest/of?it=1")
    assert env["SCRIPT_NAME"] == "/by-name/environ"
    assert env["PATH_INFO"] == "/rest/of"
    assert env["SCRIPT_FILENAME"] == server.path("apps", "matched", "environ.so")
    resp, _ = get(server, "/by-name/nosuchapp")
    assert resp.status == 500


def test_request_headers(server):
    # Two header lines with one name arrive joined with ", ".
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", "/environ")
    conn.putheader("X-Repeated", "first")
    conn.putheader("X-Repeated", "second")
    conn.putheader("Content-Type", "text/plain; charset=utf-8")
    conn.putheader("Content-Length", "5")
    conn.endheaders(b"hello")
    env = json.loads(conn.getresponse().read())
    conn.close()
    assert env["HTTP_X_REPEATED"] == "first, second"
    assert env["CONTENT_TYPE"] == "text/plain; charset=utf-8"
    assert env["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["REQUEST_METHOD"] == "POST"


def test_authorization_only_when_passed(server):
    auth = {"Authorization": "Bearer token-123", "Proxy": "http://evil.test/"}
    assert "HTTP_AUTHORIZATION" not in environ(server, "/environ", headers=auth)
    env = environ(server, "/auth-pass", headers=auth)
    assert env["HTTP_AUTHORIZATION"] == "Bearer token-123"
    assert "HTTP_PROXY" not in env


def test_remote_user_and_auth_type_from_basic_auth(server):
    resp, _ = get(server, "/protected")
    assert resp.status == 401
    env = environ(server, "/protected", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert env["REMOTE_USER"] == "alice" and env["AUTH_TYPE"] == "Basic"
    assert "HTTP_AUTHORIZATION" not in env


def test_remote_address_and_port(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.connect()
    local_port = conn.sock.getsockname()[1]
    conn.request("GET", "/environ")
    env = json.loads(conn.getresponse().read())
    conn.close()
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(local_port)


def test_setenv_and_rewrite_variables(server):
    env = environ(server, "/environ")
    assert env["SWGI_TEST_VAR"] == "from-setenv"
    env = environ(server, "/rewritten/x/y")
    assert env["REWRITTEN"] == "yes"
    assert env["PATH_INFO"] == "/x/y"
    assert env["REQUEST_URI"] == "/rewritten/x/y"


def test_virtual_hosts(server):
    env = environ(server, "/only-a/p", port=server.port2, host="a.test")
    assert env["SERVER_NAME"] == "a.test" and env["SERVER_PORT"] == str(server.port2)
    assert env["SCRIPT_NAME"] == "/only-a"
    resp, _ = get(server, "/only-a/p", port=server.port2, host="b.test")
    assert resp.status == 404
    # The main server's aliases hold in every virtual host.
    env = environ(server, "/environ", port=server.port2, host="b.test")
    assert env["SERVER_NAME"] == "b.test" and env["VHOST_VAR"] == "b"
    # A canonical name with a character HTML escapes, as Apache's own functions give it.
    env = environ(server, "/environ", port=server.port2, host="cd.test")
    assert env["SERVER_NAME"] == "c&amp;d.test" and env["HTTP_HOST"].startswith("cd.test")


def test_https(server):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", server.ssl_port, timeout=10, context=context)
    conn.request("GET", "/environ/secure")
    env = json.loads(conn.getresponse().read())
    conn.close()
    assert env["HTTPS"] == "1"
    assert env["swgi.url_scheme"] == "https"
    assert env["REQUEST_SCHEME"] == "https"
    assert env["SERVER_PORT"] == str(server.ssl_port)
    plain = environ(server, "/environ")
    assert "HTTPS" not in plain and plain["swgi.url_scheme"] == "http"


def test_bytes_that_are_not_utf8_stay_reachable(server):
    env = environ(server, "/environ/caf%E9?q=%E9")
    assert env["PATH_INFO"] == "/caf\ufffd"
    assert env["(undecodable)"]["PATH_INFO"] == "2f 63 61 66 e9"
    assert env["(undecodable)"]["SCRIPT_URL"] == "2f 65 6e 76 69 72 6f 6e 2f 63 61 66 e9"
    assert env["QUERY_STRING"] == "q=%E9"
    # Looked up one by one (mod_swgi computes each, the bridge decodes it on
    # its own), the same strings: U+FFFD where the bytes were not UTF-8.
    keys = lookups_agree(server, "/lookups/caf%E9", headers={"X-Latin": "caf\xe9"})
    assert "HTTP_X_LATIN" in keys and "PATH_INFO" in keys


def test_head_keeps_its_method(server):
    resp, data = request(server, "HEAD", "/environ")
    assert resp.status == 200 and data == b""


# Keys that differ between two requests by construction.
PER_REQUEST = {"REMOTE_PORT", "mod_swgi.request_start", "mod_swgi.request_id",
               "mod_swgi.connection_id", "HTTP_X_SWGI_ENVIRON", "SWGI_ENVIRON_APACHE"}


def both_paths(server, path, **kw):
    """The environ from mod_swgi's fast path and from Apache's own functions
    (SWGI_ENVIRON_APACHE), for the same request."""
    headers = dict(kw.pop("headers", None) or {})
    fast = environ(server, path, headers=headers, **kw)
    apache = environ(server, path, headers=dict(headers, **{"X-SWGI-Environ": "apache"}), **kw)
    assert apache.get("SWGI_ENVIRON_APACHE") == "1" and "SWGI_ENVIRON_APACHE" not in fast
    a = {k: v for k, v in fast.items() if k not in PER_REQUEST}
    b = {k: v for k, v in apache.items() if k not in PER_REQUEST}
    assert sorted(a) == sorted(b), "keys differ: only fast %s, only Apache %s" % (
        sorted(set(a) - set(b)), sorted(set(b) - set(a)))
    for key in a:
        assert a[key] == b[key], (key, a[key], b[key])
    return fast


# The kinds of request the environ comparisons cover: (mount, path after it,
# keyword arguments of request, with vhost for the second port's virtual host).
SHAPES = [
    ("app", "/some//path/?x=1&y=%20z", {"headers": {
        "X-Custom": "one", "Proxy": "http://evil.test/", "Authorization": "Basic YWxpY2U6c2VjcmV0",
        "X-Under_Score": "dropped", "X.Dot": "dropped", "Cookie": "a=1", "Proxy-Authorization": "x"}}),
    ("app", "", {"method": "POST", "body": b"a=1",
                 "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    ("app", "/caf%C3%A9/%E9?q=%E9", {}),
    ("protected", "/x", {"headers": {"Authorization": "Basic YWxpY2U6c2VjcmV0"}}),
    ("auth-pass", "", {"headers": {"Authorization": "Bearer t"}}),
    ("rewritten", "/x/y", {}),
    ("app", "", {"vhost": "b.test"}),
    ("app", "", {"vhost": "cd.test"}),
]


def each_shape(server, check, mounts):
    """check(server, path, **kwargs) for every shape, at these mounts; the results."""
    results = []
    for mount, rest, kwargs in SHAPES:
        kwargs = dict(kwargs)
        vhost = kwargs.pop("vhost", None)
        if vhost:
            kwargs.update(port=server.port2, host=vhost)
        results.append(check(server, mounts[mount] + rest, **kwargs))
    return results


def test_fast_environ_equals_apaches_own(server):
    env = each_shape(server, both_paths, {"app": "/environ", "protected": "/protected",
                                          "auth-pass": "/auth-pass", "rewritten": "/rewritten"})[0]
    assert env["PATH_TRANSLATED"].endswith("/some/path/")
    both_paths(server, "/by-name/environ/rest")


def test_fast_environ_equals_apaches_own_under_https(server):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    envs = []
    for extra in ({}, {"X-SWGI-Environ": "apache"}):
        conn = http.client.HTTPSConnection("127.0.0.1", server.ssl_port, timeout=10, context=context)
        conn.request("GET", "/environ/secure", headers=extra)
        envs.append({k: v for k, v in json.loads(conn.getresponse().read()).items() if k not in PER_REQUEST})
        conn.close()
    assert envs[0] == envs[1]


@pytest.mark.parametrize("keep,changed", [("keep", "-"), ("keepcopy", "changed")])
def test_kept_environ_keeps_its_deferred_values(server, keep, changed):
    """The environ itself kept, or (keepcopy) only a changed copy of it, the
    request's own environ dropped: either way its values outlive the request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/kept/some/where?" + keep, headers={"X-Kept": "yes"})
    assert conn.getresponse().read() == b"kept\n"
    conn.request("GET", "/kept?show")
    translated, path_info, header, change, count = conn.getresponse().read().decode().splitlines()
    conn.close()
    assert translated.endswith("/some/where") and path_info == "/some/where"
    assert header == "yes" and change == changed and int(count) > 20


def test_a_kept_input_never_reads_a_later_request(server):
    """A request thread reuses its host connection for its next request only
    when nothing holds it: swgi.input kept past its request holds it, so a
    later request on the same connection (the same process and thread under
    prefork) gets a connection of its own and the kept stream reads nothing
    of its body."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/kept?keepinput", body=b"a" * 1000)
    assert conn.getresponse().read() == b"kept\n"
    for _ in range(3):
        conn.request("POST", "/kept?readkept", body=b"b" * 2000)
        assert conn.getresponse().read() == b"kept input: error\nown body: 2000 bytes\n"
    conn.close()


def test_environ_and_input_from_another_thread(server):
    resp, data = request(server, "POST", "/kept/a/b?thread", body=b"x" * 100000)
    assert resp.status == 200
    translated, path_info, body = data.decode().split()
    assert translated.endswith("/a/b") and path_info == "/a/b" and body == "body=100000"


def lookups_agree(server, path, method="GET", **kw):
    """Looks every variable up one by one (mod_swgi computes each on its own)
    and compares with the whole environ, for one kind of request."""
    headers = dict(kw.pop("headers", None) or {})

    def text(resp, data):
        assert resp.status == 200, (resp.status, data)
        return (gzip.decompress(data) if resp.getheader("Content-Encoding") == "gzip" else data).decode()

    lines = text(*request(server, method, path, headers=headers, **kw)).splitlines()
    keys = [l for l in lines if l.startswith("keys ")][0][5:]
    lines = text(*request(server, method, path, headers=dict(headers, **{"X-Lookup-Names": keys}),
                          **kw)).splitlines()
    assert [l for l in lines if l.startswith("MISMATCH")] == []
    assert int(lines[0].split()[1]) > len(keys.split(","))
    return keys.split(",")


def test_looked_up_variables_equal_the_whole_environ(server):
    keys = each_shape(server, lookups_agree, {"app": "/lookups", "protected": "/protected-lookups",
                                              "auth-pass": "/auth-pass-lookups",
                                              "rewritten": "/rewritten-lookups"})[0]
    assert "PATH_TRANSLATED" in keys and "HTTP_X_CUSTOM" in keys and "HTTP_PROXY" not in keys
    lookups_agree(server, "/deflated-lookups", headers={"Accept-Encoding": "gzip"})
    # Apache's own functions (SWGI_ENVIRON_APACHE) answer lookups from the whole environ.
    lookups_agree(server, "/lookups/a", headers={"X-SWGI-Environ": "apache"})
