"""Applications built against different versions of SWGI run in one Apache
without interfering: each library carries its own SWGI and is loaded with
RTLD_LOCAL, and only the C ABI crosses between them and the module."""
import os
import shutil
import subprocess

import pytest

from client import get_all
from conftest import MPMS
from harness import REPO, Apache


@pytest.fixture(scope="session")
def skewed_library(tmp_path_factory):
    """SWGITestApps built against a changed SWGI: another version string and
    another Environ layout, under the same module and symbol names."""
    copy = tmp_path_factory.mktemp("skewed")
    shutil.copy(os.path.join(REPO, "Package.swift"), copy)
    shutil.copytree(os.path.join(REPO, "Sources"), copy / "Sources")
    shutil.copytree(os.path.join(REPO, "Benchmarks"), copy / "Benchmarks")
    # Every target folder the manifest names (not the test suites' own files).
    shutil.copytree(os.path.join(REPO, "Tests"), copy / "Tests",
                    ignore=shutil.ignore_patterns("integration", "Fixtures", ".build", "__pycache__"))
    app_file = copy / "Sources" / "SWGI" / "Application.swift"
    text = app_file.read_text()
    assert 'public let libraryVersion = "' in text
    app_file.write_text(text.replace('public let libraryVersion = "', 'public let libraryVersion = "skew-'))
    environ_file = copy / "Sources" / "SWGI" / "Environ.swift"
    text = environ_file.read_text()
    anchor = "    private var storage: Storage\n"
    assert anchor in text
    environ_file.write_text(text.replace(anchor, anchor + "    public var skew: (Int, Int, Int, Int) = (1, 2, 3, 4)\n"))
    subprocess.run(["swift", "build", "--package-path", str(copy), "--product", "SWGITestApps"],
                   check=True, capture_output=True)
    lib = copy / ".build" / "debug" / "libSWGITestApps.so"
    assert lib.exists()
    return str(lib)


@pytest.mark.parametrize("mpm", MPMS)
def test_two_builds_of_swgi_in_one_apache(build, skewed_library, mpm):
    module, apps = build
    site = ("SWGIAppAlias /v1 @ROOT@/apps/libSWGITestApps.so entry=version\n"
            "SWGIAppAlias /v2 @ROOT@/apps/libSWGITestApps-skew.so entry=version\n"
            "SWGIAppAlias /hello @ROOT@/apps/libHello.so\n")
    apache = Apache(module, mpm=mpm, site=site, apps={
        "libSWGITestApps.so": apps["SWGITestApps"],
        "libSWGITestApps-skew.so": skewed_library,
        "libHello.so": apps["Hello"],
    }).start()
    try:
        # Which library a child loads first varies; alternate and overlap.
        paths = ["/v2", "/v1", "/hello"] * 40

        results = [(p, s, d.decode()) for p, s, d in get_all(apache, paths)]
        v1 = {d for p, s, d in results if p == "/v1"}
        v2 = {d for p, s, d in results if p == "/v2"}
        assert all(s == 200 for _, s, _ in results)
        assert len(v1) == 1 and len(v2) == 1, (v1, v2)
        (a,), (b,) = v1, v2
        version_a, size_a = a.split()
        version_b, size_b = b.split()
        assert not version_a.startswith("skew-") and version_b == "skew-" + version_a
        assert int(size_b) >= int(size_a) + 32  # another Environ layout
        assert "[swgi:error]" not in apache.error_log()
    finally:
        apache.stop()


def needed_libraries(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return [line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


@pytest.mark.parametrize("mpm", MPMS)
def test_a_statically_linked_runtime_beside_the_shared_one(build, mpm):
    """An application built with -static-stdlib (README, "Deploying")
    carries its own Swift runtime, hidden inside it: it needs none of the
    toolchain's libraries, and serves, sync and async, in the same child as
    applications that share the toolchain's runtime."""
    module, apps = build
    assert not [n for n in needed_libraries(apps["Hello-static"]) if "swift" in n.lower() or "dispatch" in n]
    assert not [n for n in needed_libraries(apps["Slow-static"]) if "swift" in n.lower() or "dispatch" in n]
    assert "libswiftCore.so" in needed_libraries(apps["Hello"])
    site = ("SWGIAppAlias /hello @ROOT@/apps/libHello.so\n"
            "SWGIAppAlias /hello-static @ROOT@/apps/libHello-static.so\n"
            "SWGIAppAlias /hello-static-2 @ROOT@/apps/libHello-static-2.so\n"
            "SWGIAppAlias /async @ROOT@/apps/libSWGITestApps.so entry=async\n"
            "SWGIAppAlias /slow-static @ROOT@/apps/libSlow-static.so\n")
    apache = Apache(module, mpm=mpm, site=site, apps={
        "libHello.so": apps["Hello"],
        "libHello-static.so": apps["Hello-static"],
        "libHello-static-2.so": apps["Hello-static"],  # two copies of the runtime, and the shared one
        "libSWGITestApps.so": apps["SWGITestApps"],
        "libSlow-static.so": apps["Slow-static"],
    }).start()
    try:
        paths = ["/hello-static", "/hello", "/async?case=sleep&ms=1", "/hello-static-2"] * 30 + ["/slow-static?delay=10"] * 6

        results = get_all(apache, paths)
        for path, status, data in results:
            assert status == 200, (path, status, data)
            if path.startswith("/hello"):
                assert data == b"Hello world!\n", (path, data)
            elif path.startswith("/slow-static"):
                assert data.count(b"chunk ") == 10 and b"chunk 10 of 10" in data, data
        # A child that loaded both kinds: the toolchain's runtime and the
        # static builds, in one process.
        both = []
        for pid in apache.children():
            with open("/proc/%d/maps" % pid) as f:
                maps = f.read()
            if "libswiftCore.so" in maps and "libHello-static.so" in maps and "libHello-static-2.so" in maps:
                both.append(pid)
        assert both, "no child loaded the shared runtime and both static builds"
        log = apache.error_log()
        assert "[swgi:error]" not in log and "exit signal" not in log, log
    finally:
        apache.stop()
