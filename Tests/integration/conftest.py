"""Fixtures: the build, and one private Apache per MPM serving every test site."""
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import REPO, VALGRIND, Apache

# Under valgrind Apache runs as one process (-X), which only prefork can be.
MPMS = ["prefork"] if VALGRIND else ["event", "worker", "prefork"]
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
ABI_INCLUDE = os.path.join(REPO, "Sources", "CSWGIABI", "include")


@pytest.fixture(scope="session")
def build():
    """Runs scripts/build; returns the module path and {name: library path}."""
    out = subprocess.run([os.path.join(REPO, "scripts", "build")], check=True,
                         capture_output=True, text=True).stdout
    module, apps = None, {}
    for line in out.splitlines():
        words = line.split()
        if words[0] == "module":
            module = words[1]
        elif words[0] == "app":
            apps[words[1]] = words[2]
    bin_path = os.path.dirname(apps["Hello"])
    apps["SWGITestApps"] = os.path.join(bin_path, "libSWGITestApps.so")
    assert module and os.path.exists(apps["SWGITestApps"])
    return module, apps


@pytest.fixture(scope="session")
def c_fixtures(tmp_path_factory):
    """Libraries that are not proper SWGI applications."""
    d = tmp_path_factory.mktemp("c-fixtures")
    libs = {}
    for name in ("wrong_abi", "no_entry", "slow_load"):
        out = str(d / ("lib%s.so" % name))
        subprocess.run(["cc", "-shared", "-fPIC", "-I", ABI_INCLUDE, "-o", out,
                        os.path.join(FIXTURES, name + ".c")], check=True)
        libs[name] = out
    garbage = d / "garbage.so"
    garbage.write_bytes(b"this is not an ELF file\n" * 200)
    libs["garbage"] = str(garbage)
    return libs


def self_signed_cert(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


SITE = r"""
SetEnv SWGI_TEST_VAR from-setenv
ServerSignature Off

SWGIAppAlias /hello @ROOT@/apps/libHello.so
SWGIAppAlias /hello-again @ROOT@/apps/libHello.so
SWGIAppAlias /hello-static @ROOT@/apps/libHello-static.so
SWGIAppAlias /environ @ROOT@/apps/libEnvironDump.so
SWGIAppAlias /greetings @ROOT@/apps/libGreetings.so
SWGIAppAliasMatch ^/by-name/([a-z]+) @ROOT@/apps/matched/$1.so

SWGIAppAlias /echo @ROOT@/apps/libSWGITestApps.so entry=echo
SWGIAppAlias /lines @ROOT@/apps/libSWGITestApps.so entry=lines
SWGIAppAlias /stream @ROOT@/apps/libSWGITestApps.so entry=stream
SWGIAppAlias /misbehave @ROOT@/apps/libSWGITestApps.so entry=misbehave
SWGIAppAlias /status @ROOT@/apps/libSWGITestApps.so entry=status
SWGIAppAlias /header-case @ROOT@/apps/libSWGITestApps.so entry=header_case
<Location /header-case>
    AddOutputFilterByType DEFLATE application/x-swgi-case
</Location>
SWGIAppAlias /writes @ROOT@/apps/libSWGITestApps.so entry=writes
SWGIAppAlias /chunked @ROOT@/apps/libSWGITestApps.so entry=echo
SWGIAppAlias /limited @ROOT@/apps/libSWGITestApps.so entry=echo
SWGIAppAlias /limited-chunked @ROOT@/apps/libSWGITestApps.so entry=echo
SWGIAppAlias /by-location @ROOT@/apps/libSWGITestApps.so
SWGIAppAlias /kept @ROOT@/apps/libSWGITestApps.so entry=kept
SWGIAppAlias /async @ROOT@/apps/libSWGITestApps.so entry=async
SWGIAppAliasMatch ^/validated(-apache|-off)?/sync @ROOT@/apps/libSWGITestApps.so entry=misbehave
SWGIAppAliasMatch ^/validated(-apache|-off)?/async @ROOT@/apps/libSWGITestApps.so entry=async
<LocationMatch ^/validated>
    SetEnv SWGI_VALIDATE 1
</LocationMatch>
<LocationMatch ^/validated-apache>
    SetEnv SWGI_ENVIRON_APACHE 1
</LocationMatch>
<LocationMatch ^/validated-off>
    SetEnv SWGI_VALIDATE 0
</LocationMatch>
SWGIAppAlias /untrusted-owner @ROOT@/apps/untrusted/owner.so
SWGIAppAlias /untrusted-mode @ROOT@/apps/untrusted/mode.so
SWGIAppAlias /untrusted-allowed @ROOT@/apps/untrusted/owner.so
<Location /untrusted-allowed>
    SWGIAllowUntrustedFiles On
</Location>
SWGIAppAlias /lookups @ROOT@/apps/libSWGITestApps.so entry=lookups
SWGIAppAlias /auth-pass-lookups @ROOT@/apps/libSWGITestApps.so entry=lookups
<Location /auth-pass-lookups>
    SWGIPassAuthorization On
</Location>
SWGIAppAlias /protected-lookups @ROOT@/apps/libSWGITestApps.so entry=lookups
SWGIAppAlias /deflated-lookups @ROOT@/apps/libSWGITestApps.so entry=lookups
# Apache's own functions build the environ of a request that asks for it
# (test_environ compares them with mod_swgi's fast path).
<If "-n req('X-SWGI-Environ')">
    SetEnv SWGI_ENVIRON_APACHE 1
</If>
<Location /by-location>
    SWGIEntryPoint status
</Location>
<Location /environ/status>
    SetHandler server-status
</Location>
<Location /chunked>
    SWGIChunkedRequest On
</Location>
<Location /limited>
    LimitRequestBody 1000
</Location>
<Location /limited-chunked>
    SWGIChunkedRequest On
    LimitRequestBody 1000
</Location>

SWGIAppAlias /auth-pass @ROOT@/apps/libEnvironDump.so
<Location /auth-pass>
    SWGIPassAuthorization On
</Location>
SWGIAppAlias /protected @ROOT@/apps/libEnvironDump.so
<LocationMatch "^/protected(-lookups)?(/|$)">
    AuthType Basic
    AuthName "swgi test"
    AuthBasicProvider file
    AuthUserFile @ROOT@/conf/htpasswd
    Require valid-user
</LocationMatch>

SWGIAppAlias /missing @ROOT@/apps/libMissing.so
SWGIAppAlias /not-swgi @ROOT@/apps/libno_entry.so
SWGIAppAlias /wrong-abi @ROOT@/apps/libwrong_abi.so
SWGIAppAlias /garbage @ROOT@/apps/garbage.so
SWGIAppAlias /wrong-entry @ROOT@/apps/libHello.so entry=nosuch

<Directory @ROOT@/htdocs/apps>
    AddHandler swgi-app .so
    Options +ExecCGI
</Directory>
<Directory @ROOT@/htdocs/noexec>
    AddHandler swgi-app .so
</Directory>
<Directory @ROOT@/htdocs/htaccess-try>
    AddHandler swgi-app .so
    Options +ExecCGI
    AllowOverride All
</Directory>

SWGIAppAlias /deflated @ROOT@/apps/libSWGITestApps.so entry=stream
SWGIAppAlias /deflated-environ @ROOT@/apps/libEnvironDump.so
<LocationMatch ^/deflated>
    SetOutputFilter DEFLATE
</LocationMatch>

SWGIAppAlias /files @ROOT@/apps/libSWGITestApps.so entry=files
SWGIAppAlias /file-upper @ROOT@/apps/libSWGITestApps.so entry=file_upper
<LocationMatch "^/file">
    SetEnv STATIC_ROOT @ROOT@/static
    SetEnv SWGI_VALIDATE 1
    EnableSendfile On
    LogLevel swgi:trace1
</LocationMatch>

# The seed examples, each checked by the validator (SWGI_VALIDATE).
SWGIAppAlias /resultlength @ROOT@/apps/libResultLength.so
SWGIAppAlias /dispatcher @ROOT@/apps/libDispatcher.so
SWGIAppAlias /methods @ROOT@/apps/libMethods.so
SWGIAppAlias /errors @ROOT@/apps/libErrors.so
SWGIAppAlias /counter @ROOT@/apps/libCounter.so
SWGIAppAlias /guess @ROOT@/apps/libGuess.so
SWGIAppAlias /blog @ROOT@/apps/libBlog.so
SWGIAppAlias /slow @ROOT@/apps/libSlow.so
SWGIAppAlias /slow-static @ROOT@/apps/libSlow-static.so
SWGIAppAlias /notes @ROOT@/apps/libNotes.so
<LocationMatch "^/(hello|hello-static|greetings|environ|resultlength|dispatcher|methods|errors|counter|guess|blog|slow|slow-static|notes)(/|$)">
    SetEnv SWGI_VALIDATE 1
    SetEnv SWGI_SESSION_KEY test-session-key-0123456789abcdef-0123
    SetEnv BLOG_DIR @ROOT@/blog
    SetEnv NOTES_DB @ROOT@/notes/notes.db
</LocationMatch>

RewriteEngine On
RewriteRule ^/rewritten/(.*)$ /environ/$1 [PT,E=REWRITTEN:yes]
RewriteRule ^/rewritten-lookups/(.*)$ /lookups/$1 [PT,E=REWRITTEN:yes]

Listen 127.0.0.1:@PORT2@
<VirtualHost 127.0.0.1:@PORT2@>
    ServerName a.test
    SWGIAppAlias /only-a @ROOT@/apps/libEnvironDump.so
</VirtualHost>
<VirtualHost 127.0.0.1:@PORT2@>
    ServerName b.test
    SetEnv VHOST_VAR b
</VirtualHost>
# A canonical name that SERVER_NAME carries HTML-escaped, as Apache writes it.
<VirtualHost 127.0.0.1:@PORT2@>
    ServerName "c&d.test"
    ServerAlias cd.test
    UseCanonicalName On
</VirtualHost>
# mod_wsgi, the reference of the environ tests, keeps its interpreter at a
# child's exit: Python 3.11's finalization there waits on the threads of
# event and worker children until Apache kills them, 10 s later.
WSGIDestroyInterpreter Off
<VirtualHost 127.0.0.1:@PORT2@>
    ServerName wsgi.test
    Timeout 3
    WSGIScriptAlias /app @ROOT@/apps/environ.wsgi
    WSGIScriptAlias /echo @ROOT@/apps/echo.wsgi
</VirtualHost>
<VirtualHost 127.0.0.1:@PORT2@>
    ServerName swgi.test
    Timeout 3
    SWGIAppAlias /app @ROOT@/apps/libEnvironDump.so
    SWGIAppAlias /echo @ROOT@/apps/libSWGITestApps.so entry=echo
    SWGIAppAlias /async @ROOT@/apps/libSWGITestApps.so entry=async
    SWGIAppAlias /slow @ROOT@/apps/libSlow.so
</VirtualHost>

Listen 127.0.0.1:@SSLPORT@
<VirtualHost 127.0.0.1:@SSLPORT@>
    ServerName 127.0.0.1
    SSLEngine on
    SSLCertificateFile @ROOT@/conf/cert.pem
    SSLCertificateKeyFile @ROOT@/conf/key.pem
</VirtualHost>
"""

# mod_wsgi's counterpart of the Echo test application (Tests/Apps): reads
# the body in blocks and answers its length (the bad-request suite compares).
ECHO_WSGI = """
def application(environ, start_response):
    total = 0
    while True:
        block = environ["wsgi.input"].read(65536)
        if not block:
            break
        total += len(block)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"bytes=%d\\n" % total]
"""

MODULES = ["rewrite", "auth_basic", "authn_core", "authn_file", "authz_user", "ssl",
           "socache_shmcb", "deflate", "filter", "status", "wsgi"]


def make_site(module, apps, c_fixtures, mpm, loglevel="warn swgi:info"):
    libs = {"lib%s.so" % name: path for name, path in apps.items()}
    libs.update({
        "libno_entry.so": c_fixtures["no_entry"],
        "libwrong_abi.so": c_fixtures["wrong_abi"],
        "garbage.so": c_fixtures["garbage"],
    })
    with open(os.path.join(FIXTURES, "environ.wsgi")) as f:
        wsgi = f.read()
    with open(apps["EnvironDump"], "rb") as f:
        dump = f.read()
    password = subprocess.run(["openssl", "passwd", "-apr1", "secret"], check=True,
                              capture_output=True, text=True).stdout.strip()
    files = {
        "static/hello.txt": "hello, world\n",
        "static/big.bin": bytes(range(256)) * (5 * 4096),
        "static/.secret": "hidden",
        "apps/environ.wsgi": wsgi,
        "apps/echo.wsgi": ECHO_WSGI,
        "apps/matched/environ.so": dump,
        "htdocs/apps/dump.so": dump,
        "htdocs/noexec/dump.so": dump,
        "apps/untrusted/owner.so": dump,
        "apps/untrusted/mode.so": dump,
        "htdocs/htaccess-try/owner.so": dump,
        "htdocs/htaccess-try/.htaccess": "SWGIAllowUntrustedFiles On\n",
        "conf/htpasswd": "alice:%s\n" % password,
    }
    server = Apache(module, mpm=mpm, site=SITE, apps=libs, modules=MODULES,
                    loglevel=loglevel, files=files)
    cert, key = self_signed_cert(server.path("conf"))
    if VALGRIND and os.geteuid() == 0:
        shutil.chown(key, "www-data")  # Apache is www-data from the start
    os.symlink(server.path("conf", "htpasswd"), server.path("static", "escape.txt"))
    for d in ("blog", "notes"):
        os.makedirs(server.path(d))
        os.chmod(server.path(d), 0o777)  # written by Apache's user
    # Libraries Apache must not trust: another user's, and one anyone may write.
    os.chown(server.path("apps", "untrusted", "owner.so"), 65534, 65534)
    os.chown(server.path("htdocs", "htaccess-try", "owner.so"), 65534, 65534)
    os.chmod(server.path("apps", "untrusted", "mode.so"), 0o757)
    return server


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability: the reliability suite (scripts/test --reliability)")
    config.addinivalue_line("markers", "soak: long runs, only with scripts/test --soak")


@pytest.fixture(scope="session", params=MPMS)
def server(request, build, c_fixtures):
    module, apps = build
    apache = make_site(module, apps, c_fixtures, request.param).start()
    pid = apache.pid
    yield apache
    apache.stop()
    assert not os.path.exists("/proc/%d" % pid), "apache did not stop"


@pytest.fixture
def no_crash(server):
    """Fails the test if an Apache child died while it ran."""
    mark = server.log_size()
    yield
    log = server.log_since(mark)
    assert "exit signal" not in log and "Segmentation fault" not in log, log


@pytest.fixture
def mark(server):
    """The error log's size now: tests read what their requests logged."""
    return server.log_size()
