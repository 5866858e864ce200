"""Notes: the async JSON API on SQLite (sqlite-nio) through Apache, with
concurrent writers, processes opening a new database at once, and a graceful
restart in the middle of a write burst."""
import http.client
import json
import os
import re
import threading
import time

import pytest

from client import request
from conftest import MPMS
from harness import VALGRIND, Apache


def call(server, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    resp, data = request(server, method, path, body=body, headers=headers)
    return resp, (json.loads(data) if data.strip() else None)


def test_create_read_list_delete(server, no_crash):
    resp, note = call(server, "POST", "/notes/", json.dumps({"text": "première note \u2713"}).encode())
    assert resp.status == 201, note
    assert resp.getheader("Location") == "/notes/%d" % note["id"]
    assert note["text"] == "première note \u2713" and note["created"].endswith("Z")
    resp, got = call(server, "GET", "/notes/%d" % note["id"])
    assert resp.status == 200 and got == note
    resp, listing = call(server, "GET", "/notes/")
    assert resp.status == 200 and note in listing["notes"]
    resp, _ = call(server, "DELETE", "/notes/%d" % note["id"])
    assert resp.status == 204
    assert call(server, "GET", "/notes/%d" % note["id"])[0].status == 404
    assert call(server, "DELETE", "/notes/%d" % note["id"])[0].status == 404


def test_bad_requests_get_clear_answers(server, no_crash):
    assert call(server, "POST", "/notes/", b"not json")[0].status == 400
    assert call(server, "POST", "/notes/", b'{"title": "no text"}')[0].status == 400
    assert call(server, "POST", "/notes/", b'{"text": "x"} trailing')[0].status == 400
    assert call(server, "POST", "/notes/", b'{"text": "' + b"x" * 70000 + b'"}')[0].status == 413
    resp, _ = call(server, "PUT", "/notes/")
    assert resp.status == 405 and resp.getheader("Allow") == "GET, HEAD, POST"
    assert call(server, "GET", "/notes/abc")[0].status == 404
    # Escapes and a surrogate pair, as JSON writes them.
    resp, note = call(server, "POST", "/notes/", b'{"text": "a\\"b\\\\c\\n\\ud83d\\ude00"}')
    assert resp.status == 201 and note["text"] == 'a"b\\c\n\U0001F600'


def test_concurrent_writers_lose_nothing(server, no_crash):
    created, failures = [], []
    lock = threading.Lock()

    def writer(n):
        for i in range(25):
            resp, note = call(server, "POST", "/notes/", json.dumps({"text": "w%d-%d" % (n, i)}).encode())
            with lock:
                (created if resp.status == 201 else failures).append(note if resp.status == 201 else resp.status)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert len(created) == 200 and len({n["id"] for n in created}) == 200
    listing = call(server, "GET", "/notes/")[1]["notes"]
    texts = {n["text"] for n in listing}
    assert all("w%d-%d" % (n, i) in texts for n in range(8) for i in range(25))


@pytest.mark.skipif(bool(VALGRIND), reason="apache2 -X (valgrind) does not restart gracefully")
@pytest.mark.parametrize("mpm", [m for m in MPMS if m in ("event", "prefork")])
def test_a_graceful_restart_in_a_write_burst_loses_nothing(build, mpm):
    module, apps = build
    site = """SWGIAppAlias /notes @ROOT@/apps/libNotes.so
<Location /notes>
    SetEnv NOTES_DB @ROOT@/notes/notes.db
</Location>
"""
    apache = Apache(module, mpm=mpm, site=site, apps={"libNotes.so": apps["Notes"]})
    os.makedirs(apache.path("notes"))
    os.chmod(apache.path("notes"), 0o777)
    apache.start()
    try:
        created, failures = [], []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(n):
            i = 0
            while not stop.is_set():
                try:
                    resp, data = request(apache, "POST", "/notes/", body=json.dumps({"text": "b%d-%d" % (n, i)}).encode(),
                                         headers={"Content-Type": "application/json"})
                    try:
                        note = json.loads(data)
                    except ValueError:
                        note = None
                    # Anything but a 201 with the note is a failure, recorded with what came back.
                    result = note if resp.status == 201 and isinstance(note, dict) else (resp.status, data[:300])
                except Exception as e:  # noqa: BLE001 - any error is a failure, not a dead writer
                    result = repr(e)
                with lock:
                    (created if isinstance(result, dict) else failures).append(result)
                i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        before = set(apache.children())
        assert apache.apachectl("-k", "graceful").returncode == 0
        time.sleep(2.0)
        after = set(apache.children())
        stop.set()
        for t in threads:
            t.join()
        assert not failures, (failures[:5], apache.error_log()[-3000:])
        assert len(created) > 50
        listing = call(apache, "GET", "/notes/")[1]["notes"]
        assert sorted(n["id"] for n in listing) == sorted(n["id"] for n in created)
        assert after - before, "the graceful restart made no new children"
        assert "exit signal" not in apache.error_log()
    finally:
        apache.stop()


@pytest.mark.skipif(bool(VALGRIND), reason="needs sixteen processes at once")
def test_processes_opening_a_new_database_at_once_all_answer(build):
    """Sixteen Apache processes open the same new database in the same instant,
    for one database after another: when two of them turn on WAL together,
    SQLite answers one of them "database is locked" at once (a deadlock it
    does not wait out), and that request must still get its note. Prefork:
    each kept connection is a process of its own."""
    module, apps = build
    processes = 16
    site = """StartServers 16
MinSpareServers 16
MaxSpareServers 32
SWGIAppAlias /race @ROOT@/apps/libNotes.so
<Location /race>
    SetEnvIf X-Notes-Db "^([0-9]+)$" NOTES_DB=@ROOT@/notes/race-$1.db
</Location>
"""
    apache = Apache(module, mpm="prefork", site=site, apps={"libNotes.so": apps["Notes"]},
                    modules=("setenvif",))
    os.makedirs(apache.path("notes"))
    os.chmod(apache.path("notes"), 0o777)
    apache.start()
    try:
        conns = [http.client.HTTPConnection("127.0.0.1", apache.port, timeout=30) for _ in range(processes)]

        def post(conn, db, text):
            conn.request("POST", "/race/", body=json.dumps({"text": text}).encode(),
                         headers={"Content-Type": "application/json", "X-Notes-Db": str(db)})
            resp = conn.getresponse()
            return resp.status, resp.read()[:300]

        # A first request on each connection loads the app in its process:
        # sixteen connections, sixteen processes.
        for n, c in enumerate(conns):
            assert post(c, 0, "warm %d" % n)[0] == 201
        loaded = set(re.findall(r"loaded SWGI application \S*libNotes\.so .* in process (\d+)", apache.error_log()))
        assert len(loaded) == processes, loaded
        rounds = 60
        results = [[None] * processes for _ in range(rounds)]
        barrier = threading.Barrier(processes, timeout=60)

        def client(n):
            for db in range(1, rounds + 1):
                try:
                    barrier.wait()
                    results[db - 1][n] = post(conns[n], db, "n%d" % n)
                except Exception as e:  # noqa: BLE001 - recorded as this request's failure
                    results[db - 1][n] = repr(e)
                    barrier.abort()
                    return

        threads = [threading.Thread(target=client, args=(n,)) for n in range(processes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        failures = [(db + 1, r) for db, row in enumerate(results) for r in row if not (r and r[0] == 201)]
        assert not failures, (len(failures), failures[:3], apache.error_log()[-2000:])
        # Every database holds the sixteen notes, once each.
        for db in range(1, rounds + 1):
            resp, data = request(apache, "GET", "/race/", headers={"X-Notes-Db": str(db)})
            assert resp.status == 200
            assert sorted(n["text"] for n in json.loads(data)["notes"]) == sorted("n%d" % n for n in range(processes))
        for c in conns:
            c.close()
    finally:
        apache.stop()
