"""A real, private Apache httpd for the integration tests.

Each instance has its own ServerRoot (a temporary folder), configuration
generated from apache/conf/httpd.conf.in, a free port on 127.0.0.1 and its
own logs; it is started with `apache2 -k start` and stopped by the PID in its
PidFile. Application libraries are copied into ROOT/apps, so that Apache's
children (www-data, when started as root) can read them wherever the
checkout lives.

With SWGI_TEST_VALGRIND=DIR (scripts/test --valgrind) every Apache runs as
one process (`apache2 -X`, prefork) under valgrind's memcheck, as www-data
from the start, and leaves one report per process in DIR.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEMPLATE = os.path.join(os.path.dirname(__file__), "httpd.conf.in")
APACHE = shutil.which("apache2") or shutil.which("httpd") or "/usr/sbin/apache2"
VALGRIND = os.environ.get("SWGI_TEST_VALGRIND")
# Slower under valgrind: starting (Swift and Python libraries loaded under
# memcheck) and stopping (the leak check).
START_SECONDS, STOP_SECONDS = (180, 300) if VALGRIND else (20, 20)


def apxs_query(name):
    return subprocess.check_output(["apxs", "-q", name], text=True).strip()


MODDIR = apxs_query("LIBEXECDIR")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Apache:
    def __init__(self, module, mpm="event", site="", apps=None, modules=(),
                 loglevel="warn swgi:info", files=None):
        self.mpm = mpm
        self.root = tempfile.mkdtemp(prefix="swgi-%s-" % mpm)
        os.chmod(self.root, 0o755)
        for d in ("run", "logs", "htdocs", "apps", "conf"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        for name, path in (apps or {}).items():
            shutil.copy(path, os.path.join(self.root, "apps", name))
            if VALGRIND and name.endswith(".so"):
                # valgrind 3.19 gives up on the DWARF 5 that clang writes for
                # swift-crypto's C code; the symbol table stays, so do the
                # function names in its reports.
                subprocess.run(["objcopy", "--strip-debug", os.path.join(self.root, "apps", name)],
                               check=False, capture_output=True)
        for rel, content in (files or {}).items():
            path = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(path, mode) as f:
                f.write(content)
        self.port = free_port()
        self.port2 = free_port()
        self.ssl_port = free_port()
        as_root = os.geteuid() == 0
        user = "User www-data\nGroup www-data" if as_root and not VALGRIND else ""
        if VALGRIND and as_root:
            for d in ("run", "logs"):
                shutil.chown(os.path.join(self.root, d), "www-data", "www-data")
        loads = "".join("LoadModule %s_module %s/mod_%s.so\n" % (m, MODDIR, m)
                        for m in modules)
        with open(TEMPLATE) as f:
            conf = f.read()
        for key, value in {"ROOT": self.root, "PORT": str(self.port), "MPM": mpm,
                           "MODDIR": MODDIR, "MODULE": module, "USER": user,
                           "LOGLEVEL": loglevel}.items():
            conf = conf.replace("@%s@" % key, value)
        self.conf = os.path.join(self.root, "conf", "httpd.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        with open(os.path.join(self.root, "conf", "site.conf"), "w") as f:
            f.write(loads + self.fill(site))
        self.pid = None

    def fill(self, text):
        for key, value in (("@ROOT@", self.root), ("@PORT2@", str(self.port2)),
                           ("@SSLPORT@", str(self.ssl_port)), ("@PORT@", str(self.port))):
            text = text.replace(key, value)
        return text

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def apachectl(self, *args):
        return subprocess.run([APACHE, "-d", self.root, "-f", self.conf] + list(args),
                              capture_output=True, text=True, timeout=60)

    def start(self):
        if VALGRIND:
            self.start_under_valgrind()
        else:
            result = self.apachectl("-k", "start")
            if result.returncode != 0:
                raise RuntimeError("apache failed to start:\n%s%s\n%s" % (
                    result.stdout, result.stderr, self.error_log()))
        deadline = time.time() + START_SECONDS
        while time.time() < deadline:
            try:
                if not VALGRIND:
                    with open(self.path("run", "httpd.pid")) as f:
                        self.pid = int(f.read().strip())
                elif self.process.poll() is not None:
                    raise RuntimeError("apache under valgrind exited:\n" + self.error_log())
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                # Under valgrind the port is open before the configuration is
                # checked: be sure the process survived that too.
                if VALGRIND:
                    time.sleep(1)
                    if self.process.poll() is not None:
                        raise RuntimeError("apache under valgrind exited:\n" + self.error_log())
                return self
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("apache did not come up:\n" + self.error_log())

    def start_under_valgrind(self):
        command = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
                   "--errors-for-leak-kinds=definite", "--num-callers=40", "--keep-debuginfo=yes",
                   "--log-file=%s/valgrind-%%p.log" % VALGRIND, APACHE, "-X", "-d", self.root, "-f", self.conf]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups"] + command
        # mod_wsgi's Python with the system allocator, which memcheck understands.
        env = dict(os.environ, PYTHONMALLOC="malloc")
        with open(self.path("logs", "valgrind.out"), "w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.pid = self.process.pid

    def stop(self):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        if VALGRIND:
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.pid = None
            return
        deadline = time.time() + STOP_SECONDS
        while time.time() < deadline and os.path.exists("/proc/%d" % self.pid):
            time.sleep(0.05)
        if os.path.exists("/proc/%d" % self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def children(self):
        """PIDs of the Apache children (the parent's direct children)."""
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def error_log(self):
        try:
            with open(self.path("logs", "error.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.path("logs", "error.log"))
        except FileNotFoundError:
            return 0

    def log_since(self, offset, wait_for=None, timeout=5.0):
        """Error-log text written after `offset`; waits until `wait_for` shows up."""
        deadline = time.time() + timeout
        while True:
            with open(self.path("logs", "error.log"), "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
            if wait_for is None or wait_for in text or time.time() > deadline:
                return text
            time.sleep(0.05)
