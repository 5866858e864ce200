"""swgi-express: one command from a library or a package to a running Apache."""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from client import get
from conftest import MPMS
from harness import REPO, free_port

FIXTURES = os.path.join(REPO, "Tests", "Fixtures")


@pytest.fixture(scope="module")
def express(build):
    module, apps = build
    binary = os.path.join(os.path.dirname(apps["Hello"]), "swgi-express")
    assert os.path.exists(binary)

    def run(*args, env=None, timeout=300):
        return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})

    run.binary = binary
    run.module = module
    run.apps = apps
    return run


class Served:
    """A running `swgi-express serve`."""

    def __init__(self, express, *args):
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="swgi-express-test-")
        self.process = subprocess.Popen([express.binary, "serve", "--port", str(self.port),
                                         "--server-root", self.root, *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.banner = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("swgi-express serve ended:\n" + "".join(self.banner) + self.process.stderr.read())
            self.banner.append(line)
            if "Ctrl-C stops it" in line:
                break

    def stop(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        leftover = subprocess.run(["pgrep", "-f", self.root], capture_output=True, text=True).stdout.split()
        self.output = self.process.stdout.read()
        return code, leftover, self.process.stderr.read()


def test_help_on_every_subcommand(express):
    for sub in ["", "serve", "setup", "module-config", "install-module"]:
        result = express(*([sub] if sub else []), "--help")
        assert result.returncode == 0 and "USAGE: swgi-express" in result.stdout, sub


@pytest.mark.parametrize("mpm", MPMS)
def test_serve_with_each_mpm_and_stop_leaves_nothing(express, mpm):
    apps = express.apps
    served = Served(express, "--mpm", mpm, "/hello=" + apps["Hello"], "/greetings=" + apps["Greetings"])
    assert any("http://127.0.0.1:%d/hello" % served.port in line for line in served.banner)
    assert get(served, "/hello")[1] == b"Hello world!\n"
    assert get(served, "/greetings?name=Ida")[1] == b"My name is Ida"
    code, leftover, log = served.stop()
    assert code == 0 and leftover == [], log
    assert "resuming normal operations" in log  # Apache's error log reached the terminal


def test_serve_reports_an_apache_that_a_signal_ended_and_leaves_nothing(express):
    """Apache's parent killed outright (as a crash ends it): serve exits with
    128 + the signal's number, says so, and stops what was left of Apache's
    process group (its children; daemon processes)."""
    apps = express.apps
    served = Served(express, "/hello=" + apps["Hello"])
    assert get(served, "/hello")[1] == b"Hello world!\n"
    with open(os.path.join(served.root, "run", "httpd.pid")) as f:
        os.kill(int(f.read().strip()), signal.SIGKILL)
    code = served.process.wait(timeout=30)
    leftover = subprocess.run(["pgrep", "-f", served.root], capture_output=True, text=True).stdout.split()
    log = served.process.stderr.read()
    assert code == 128 + signal.SIGKILL, log
    assert "swgi-express: Apache ended by signal 9" in log
    assert leftover == [], log


def test_ctrl_c_stops_it_too(express):
    served = Served(express, express.apps["Hello"])
    assert get(served, "/")[1] == b"Hello world!\n"
    code, leftover, _ = served.stop(signal.SIGINT)
    assert code == 0 and leftover == []


def world_readable_folder():
    """A folder Apache's user (www-data, when tests run as root) can read:
    pytest's own temporary folders are private to their owner."""
    folder = tempfile.mkdtemp(prefix="swgi-express-files-")
    os.chmod(folder, 0o755)
    return folder


def test_one_application_at_the_root_with_options(express):
    import pathlib

    docroot = pathlib.Path(world_readable_folder())
    (docroot / "robots.txt").write_text("User-agent: *\n")
    os.chmod(docroot / "robots.txt", 0o644)
    served = Served(express, "--setenv", "GREETING", "hi there", "--setenv", "OTHER=2",
                    "--document-root", str(docroot), "--server-status", "--access-log",
                    express.apps["EnvironDump"])
    try:
        import json
        env = json.loads(get(served, "/some/path")[1])
        assert env["SCRIPT_NAME"] == "" and env["PATH_INFO"] == "/some/path"
        assert env["GREETING"] == "hi there" and env["OTHER"] == "2"
        resp, data = get(served, "/robots.txt")
        assert resp.status == 200 and data == b"User-agent: *\n"
        resp, data = get(served, "/server-status")
        assert resp.status == 200 and b"Apache Server Status" in data
    finally:
        code, leftover, log = served.stop()
    assert code == 0 and leftover == []
    assert '"GET /some/path HTTP/1.1" 200' in served.output  # --access-log: on the terminal


def test_serve_a_package(express):
    served = Served(express, os.path.join(FIXTURES, "ExpressApp"))
    try:
        assert get(served, "/")[1] == b"built from a package at /\n"
    finally:
        served.stop()


def test_serve_an_async_application_built_without_the_concurrency_setting(express):
    # The fixture's package leaves out NonisolatedNonsendingByDefault, which
    # SWGI is built with (README, "Async applications"): it is served anyway.
    served = Served(express, "--entry", "async", os.path.join(FIXTURES, "ExpressApp"))
    try:
        for query in ("", "wave"):
            resp, data = get(served, "/?" + query)
            word = query or "async"
            assert resp.status == 200 and data == ("%s 1\n%s 2\n%s 3\n" % (word, word, word)).encode()
    finally:
        code, leftover, log = served.stop()
    assert code == 0 and leftover == [], log


def test_reload_on_changes_loses_no_request(express, tmp_path):
    app = tmp_path / "libApp.so"
    shutil.copy(express.apps["Hello"], app)
    served = Served(express, "--reload-on-changes", str(app))
    results = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                resp, data = get(served, "/")
                results.append((resp.status, data))
            except (OSError, http.client.HTTPException) as e:
                results.append(("error", repr(e)))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        staged = tmp_path / "libApp.so.new"
        shutil.copy(express.apps["Greetings"], staged)
        os.rename(staged, app)  # a new build, installed as builds are
        deadline = time.time() + 20
        while time.time() < deadline and not any(d == b"My name is Alex" for _, d in results[-20:]):
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
        code, leftover, log = served.stop()
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    bodies = [d for _, d in results]
    assert b"Hello world!\n" in bodies and bodies[-1] == b"My name is Alex", len(results)
    assert "changed: graceful restart" in log
    assert code == 0 and leftover == []


def test_setup_and_its_apachectl(express):
    root = os.path.join(world_readable_folder(), "server")
    port = free_port()
    result = express("setup", "--port", str(port), "--server-root", root, express.apps["Hello"])
    assert result.returncode == 0, result.stderr
    apachectl = os.path.join(root, "apachectl")
    assert apachectl in result.stdout
    assert subprocess.run([apachectl, "configtest"], capture_output=True).returncode == 0

    class Target:
        pass
    target = Target()
    target.port = port
    try:
        assert subprocess.run([apachectl, "start"]).returncode == 0
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                assert get(target, "/")[1] == b"Hello world!\n"
                break
            except OSError:
                time.sleep(0.1)
        assert subprocess.run([apachectl, "graceful"]).returncode == 0
        time.sleep(1)
        assert get(target, "/")[1] == b"Hello world!\n"
        assert os.path.exists(os.path.join(root, "logs", "error.log"))
    finally:
        subprocess.run([apachectl, "stop"])
    deadline = time.time() + 15
    while time.time() < deadline and subprocess.run(["pgrep", "-f", root], capture_output=True).stdout:
        time.sleep(0.1)
    assert not subprocess.run(["pgrep", "-f", root], capture_output=True).stdout


def test_module_config(express):
    result = express("module-config")
    assert result.returncode == 0
    line = result.stdout.strip()
    assert line.startswith("LoadModule swgi_module /") and os.path.exists(line.split()[-1])


def test_install_module_into_a_throwaway_root(express, tmp_path):
    result = express("install-module", env={"SWGI_INSTALL_ROOT": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    moddir = subprocess.check_output(["apxs", "-q", "LIBEXECDIR"], text=True).strip()
    installed = str(tmp_path) + moddir + "/mod_swgi.so"
    assert open(installed, "rb").read() == open(express.module, "rb").read()
    load = (tmp_path / "etc/apache2/mods-available/swgi.load").read_text()
    assert load == "LoadModule swgi_module %s/mod_swgi.so\n" % moddir
    assert "SWGIAppAlias" in (tmp_path / "etc/apache2/mods-available/swgi.conf").read_text()
    assert "a2enmod swgi" in result.stdout


def test_clear_errors(express, c_fixtures, tmp_path):
    hello = express.apps["Hello"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = express("serve", "--port", str(port), hello)
        assert result.returncode == 1
        assert "in use" in result.stderr and "--port" in result.stderr
    cases = [
        ((c_fixtures["no_entry"],), "not an SWGI application"),
        ((c_fixtures["wrong_abi"],), "built for SWGI ABI version 999"),
        (("/nonexistent/libX.so",), "does not exist"),
        (("--server-root", "/proc/swgi-cannot-write", hello), "cannot write the server root /proc/swgi-cannot-write"),
        (("--server-root", str(tmp_path / "private"), hello), "cannot reach"),
        ((os.path.join(FIXTURES, "Broken"),), "building the package"),
        (("--mpm", "turbo", hello), "--mpm must be event, worker or prefork"),
        (("--module", "/nonexistent/mod_swgi.so", hello), "mod_swgi.so not found at /nonexistent/mod_swgi.so"),
        (("--httpd-executable", "/nonexistent/apache2", hello), "apt-get install apache2"),
    ]
    for args, message in cases:
        result = express("serve", "--port", str(free_port()), *args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and "Fatal error" not in result.stderr
    broken = express("serve", "--port", str(free_port()), os.path.join(FIXTURES, "Broken"))
    assert "undefinedNameForTheTest" in broken.stderr  # the compiler's own error


def test_apache_ends_even_if_swgi_express_is_killed(express):
    served = Served(express, express.apps["Hello"])
    assert get(served, "/")[1] == b"Hello world!\n"
    code, leftover, _ = served.stop(signal.SIGKILL)
    deadline = time.time() + 15
    while leftover and time.time() < deadline:
        time.sleep(0.2)
        leftover = subprocess.run(["pgrep", "-f", served.root], capture_output=True, text=True).stdout.split()
    assert leftover == []


def test_process_and_logging_options_reach_the_configuration(express):
    folder = world_readable_folder()
    extra = os.path.join(folder, "extra.conf")
    with open(extra, "w") as f:
        f.write("SetEnv FROM_INCLUDE yes\n")
    os.chmod(extra, 0o644)
    for mpm, args, expected in [
        ("prefork", ["--processes", "3", "--max-clients", "7"],
         ["StartServers 3", "MaxRequestWorkers 7", "ServerLimit 7"]),
        ("worker", ["--processes", "2", "--threads", "10"],
         ["StartServers 2", "ThreadsPerChild 10", "MaxRequestWorkers 20"]),
        ("event", ["--threads", "5", "--max-clients", "40"],
         ["ThreadsPerChild 5", "MaxRequestWorkers 40", "ServerLimit 8"]),
    ]:
        root = os.path.join(folder, mpm)
        result = express("setup", "--mpm", mpm, "--server-root", root, "--log-level", "info swgi:debug",
                         "--include-file", extra, *args, express.apps["Hello"])
        assert result.returncode == 0, result.stderr  # setup runs apachectl configtest
        conf = open(os.path.join(root, "conf", "httpd.conf")).read()
        for line in expected + ["LoadModule mpm_%s_module" % mpm, "LogLevel info swgi:debug",
                                'Include "%s"' % extra]:
            assert line in conf, (mpm, line)
    served = Served(express, "--include-file", extra, express.apps["EnvironDump"])
    try:
        import json
        assert json.loads(get(served, "/")[1])["FROM_INCLUDE"] == "yes"
    finally:
        served.stop()


def test_serve_runs_daemon_mode_unless_told_otherwise(express):
    import json
    served = Served(express, express.apps["EnvironDump"])
    try:
        assert any("daemon mode, 2 processes of 25 threads" in line for line in served.banner)
        assert json.loads(get(served, "/")[1])["mod_swgi.process_group"] == "express"
    finally:
        code, leftover, _ = served.stop()
    assert code == 0 and leftover == []  # the daemon processes are gone too
    served = Served(express, "--embedded-mode", express.apps["EnvironDump"])
    try:
        assert any("embedded mode" in line for line in served.banner)
        assert json.loads(get(served, "/")[1])["mod_swgi.process_group"] == ""
    finally:
        served.stop()


def test_daemon_options_reach_the_configuration(express):
    folder = world_readable_folder()
    root = os.path.join(folder, "daemon")
    result = express("setup", "--server-root", root, "--processes", "3", "--threads", "4",
                     "--maximum-requests", "100", "--request-timeout", "30", express.apps["Hello"])
    assert result.returncode == 0, result.stderr
    conf = open(os.path.join(root, "conf", "httpd.conf")).read()
    assert "SWGIDaemonProcess express processes=3 threads=4 maximum-requests=100 request-timeout=30\n" in conf
    assert "SWGIProcessGroup express\n" in conf
    root = os.path.join(folder, "embedded")
    assert express("setup", "--server-root", root, "--embedded-mode", express.apps["Hello"]).returncode == 0
    assert "SWGIDaemonProcess" not in open(os.path.join(root, "conf", "httpd.conf")).read()
    result = express("setup", "--server-root", root, "--embedded-mode", "--maximum-requests", "5",
                     express.apps["Hello"])
    assert result.returncode != 0 and "are for daemon mode: drop --embedded-mode" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="--user needs root")
def test_user_and_group_reach_the_daemon_processes(express):
    served = Served(express, "--entry", "daemon", "--user", "nobody", "--group", "nogroup",
                    "--processes", "1", "--maximum-requests", "2", express.apps["SWGITestApps"])
    try:
        def probe():
            return dict(line.split("=", 1) for line in get(served, "/")[1].decode().splitlines())
        first = probe()
        assert first["uid"] == "65534" and first["gid"] == "65534" and first["group"] == "express"
        # maximum-requests=2: the third request is another process's.
        assert probe()["pid"] == first["pid"]
        assert probe()["pid"] != first["pid"]
    finally:
        served.stop()
