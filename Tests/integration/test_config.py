"""Directives: AddHandler, ExecCGI, LogLevel swgi:, configuration errors."""
import subprocess

from client import environ, get
from conftest import make_site
import pytest

from harness import APACHE, VALGRIND, Apache


def test_add_handler_serves_a_library_by_its_url(server):
    env = environ(server, "/apps/dump.so/extra?x=1")
    assert env["SCRIPT_NAME"] == "/apps/dump.so"
    assert env["PATH_INFO"] == "/extra"
    assert env["SCRIPT_FILENAME"] == server.path("htdocs", "apps", "dump.so")


def test_add_handler_needs_exec_cgi(server, mark):
    resp, _ = get(server, "/noexec/dump.so")
    assert resp.status == 403
    assert "Options ExecCGI is off in this directory" in server.log_since(mark, "ExecCGI")


def test_add_handler_missing_file_is_404(server):
    resp, _ = get(server, "/apps/nothere.so")
    assert resp.status == 404


def test_log_level_controls_the_modules_lines(build, c_fixtures):
    module, apps = build
    quiet = make_site(module, apps, c_fixtures, "event", loglevel="warn swgi:warn").start()
    try:
        assert get(quiet, "/hello")[0].status == 200
        assert get(quiet, "/misbehave?how=throw-before")[0].status == 500
        log = quiet.log_since(0, "boom before headers")
        assert "loaded SWGI application" not in log      # info: filtered out
        assert "boom before headers" in log              # error: kept
    finally:
        quiet.stop()


def configtest(module, site):
    apache = Apache(module, site=site)
    return apache.apachectl("-t")


def test_configuration_errors_name_the_directive(build):
    module, _ = build
    cases = [
        ("SWGIAppAlias hello /x.so", "URL-path must begin with '/'"),
        ("SWGIAppAlias /a /x.so entry=1bad", "unknown option 'entry=1bad'"),
        ("SWGIAppAlias /a /x.so flavour=mild", "unknown option 'flavour=mild'"),
        ("SWGIAppAliasMatch ^/(a /x.so", "invalid regular expression"),
        ("SWGIEntryPoint not-valid", "is not a valid entry point name"),
        ("SWGIPassAuthorization Maybe", "SWGIPassAuthorization must be On or Off"),
        ("<Location /x>\nSWGIAppAlias /a /x.so\n</Location>", "SWGIAppAlias"),
    ]
    for site, message in cases:
        result = configtest(module, site)
        assert result.returncode != 0, site
        assert message in result.stderr + result.stdout, (site, result.stderr)
    ok = configtest(module, "SWGIAppAlias / /srv/x.so\nSWGIAppAlias /a/ /srv/y.so entry=other_1\n")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.skipif(bool(VALGRIND), reason="apache2 -X (valgrind) is one process and does not restart gracefully")
def test_graceful_restart_picks_up_a_rebuilt_library(build):
    import os
    import time

    module, apps = build
    apache = Apache(module, site="SWGIAppAlias /app @ROOT@/apps/libApp.so\n",
                    apps={"libApp.so": apps["Hello"]}).start()
    try:
        assert get(apache, "/app")[1] == b"Hello world!\n"
        # Install the new build as deployments should: a new file, renamed
        # over the old one (never overwrite a loaded library in place).
        staged = apache.path("apps", ".libApp.so.new")
        with open(apps["Greetings"], "rb") as src, open(staged, "wb") as dst:
            dst.write(src.read())
        os.rename(staged, apache.path("apps", "libApp.so"))
        assert apache.apachectl("-k", "graceful").returncode == 0
        deadline = time.time() + 15
        while time.time() < deadline:
            if get(apache, "/app")[1] == b"My name is Alex":
                break
            time.sleep(0.1)
        assert get(apache, "/app")[1] == b"My name is Alex"
    finally:
        apache.stop()


def test_set_handler_under_an_alias_wins(server):
    resp, data = get(server, "/environ/status")
    assert resp.status == 200 and b"Apache Server Status" in data
    resp, data = get(server, "/environ/other")
    assert resp.status == 200 and b'"PATH_INFO": "/other"' in data
