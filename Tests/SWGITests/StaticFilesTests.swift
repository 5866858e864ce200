import Testing
@testable import SWGI
import SWGITesting
@testable import SWGIStatic

#if canImport(Glibc)
import Glibc
#endif

/// A temporary folder with files, and a file outside it.
final class Tree: Sendable {
    let base: String
    let root: String

    init() {
        var template = Array("/tmp/swgi-static-XXXXXX".utf8CString)
        base = String(cString: mkdtemp(&template))
        root = base + "/root"
        mkdir(root, 0o755)
        mkdir(root + "/sub", 0o755)
        write(root + "/hello.txt", "hello, world\n")
        write(root + "/sub/page.html", "<p>page</p>")
        write(root + "/.secret", "hidden")
        write(base + "/outside.txt", "outside")
        symlink(base + "/outside.txt", root + "/escape.txt")
        symlink(root + "/hello.txt", root + "/inside-link.txt")
    }

    func write(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
    }
}

@Suite struct StaticFilesTests {
    let tree = Tree()

    @Test func servesFilesWithHeaders() {
        let client = TestClient(StaticFiles(root: tree.root))
        let r = client.get("/hello.txt")
        #expect(r.status == 200)
        #expect(r.text == "hello, world\n")
        #expect(r.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(r.header("Content-Length") == "13")
        #expect(r.header("Last-Modified")?.hasSuffix(" GMT") == true)
        #expect(r.violations.isEmpty)
        #expect(client.get("/sub/page.html").text == "<p>page</p>")
        #expect(client.get("/inside-link.txt").status == 200)
    }

    @Test func neverLeavesTheRoot() {
        let client = TestClient(StaticFiles(root: tree.root))
        for path in ["/../outside.txt", "/sub/../../outside.txt", "/escape.txt", "/.secret", "/sub/./page.html",
                     "/", "/sub", "/missing", "/hello.txt/x", "/sub\\..\\hello.txt"] {
            #expect(client.get(path).status == 404, "\(path)")
        }
    }

    /// A sibling folder whose name is canonically equivalent to the root's
    /// (é precomposed and decomposed) is another folder: a symlink into it
    /// must not pass as inside the root (paths are compared by bytes).
    @Test func anEquivalentNameIsNotTheRoot() {
        let root = tree.base + "/caf\u{E9}"
        let sibling = tree.base + "/cafe\u{301}"
        mkdir(root, 0o755)
        mkdir(sibling, 0o755)
        tree.write(sibling + "/private.txt", "private")
        symlink(sibling + "/private.txt", root + "/link.txt")
        let client = TestClient(StaticFiles(root: root))
        #expect(client.get("/link.txt").status == 404)
        #expect(client.get("/\u{6DD}/../link.txt").status == 404)
    }

    @Test func conditionalAndRangeRequests() throws {
        let client = TestClient(StaticFiles(root: tree.root))
        let modified = try #require(client.get("/hello.txt").header("Last-Modified"))
        let cached = client.get("/hello.txt", headers: [("If-Modified-Since", modified)])
        #expect(cached.status == 304 && cached.body.isEmpty)
        #expect(cached.violations.isEmpty)
        #expect(client.get("/hello.txt", headers: [("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")]).status == 200)

        let part = client.get("/hello.txt", headers: [("Range", "bytes=0-4")])
        #expect(part.status == 206 && part.text == "hello")
        #expect(part.header("Content-Range") == "bytes 0-4/13")
        #expect(client.get("/hello.txt", headers: [("Range", "bytes=-6")]).text == "world\n")
        #expect(client.get("/hello.txt", headers: [("Range", "bytes=7-")]).text == "world\n")
        let unsatisfiable = client.get("/hello.txt", headers: [("Range", "bytes=50-")])
        #expect(unsatisfiable.status == 416 && unsatisfiable.header("Content-Range") == "bytes */13")
        #expect(client.get("/hello.txt", headers: [("Range", "bytes=0-1,3-4")]).status == 200)
        #expect(client.post("/hello.txt", body: []).status == 405)
    }

    @Test(arguments: [
        ("bytes=0-0", 10, StaticFiles.RangeRequest.part(0, 0)), ("bytes=5-100", 10, .part(5, 9)),
        ("bytes=-100", 10, .part(0, 9)), ("bytes=-0", 10, .unsatisfiable), ("bytes=10-", 10, .unsatisfiable),
        ("bytes=3-1", 10, .whole), ("items=0-1", 10, .whole), ("bytes=a-b", 10, .whole), ("bytes=0-", 0, .unsatisfiable),
    ])
    func ranges(_ c: (String, Int, StaticFiles.RangeRequest)) {
        #expect(StaticFiles.parseRange(c.0, size: c.1) == c.2)
    }

    @Test func httpDates() {
        #expect(HTTPDate.format(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777)
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        for t in stride(from: 0, to: 4_000_000_000, by: 97_654_321) {
            #expect(HTTPDate.parse(HTTPDate.format(t)) == t)
        }
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("garbage") == nil)
        #expect(HTTPDate.rfc3339(784111777) == "1994-11-06T08:49:37Z")
        #expect(HTTPDate.rfc3339(-1) == "1969-12-31T23:59:59Z")
    }

    @Test func fileWrapperBodiesIterateAndClose() throws {
        let body = try posixFileWrapper(path: tree.root + "/hello.txt", offset: 7, length: 5)
        #expect(body.fileRegion == FileRegion(path: tree.root + "/hello.txt", offset: 7, length: 5))
        var it = body.makeIterator()
        #expect(try it.next() == "world")
        #expect(try it.next() == nil)
        body.close()
        #expect(throws: SWGIError.self) { try posixFileWrapper(path: tree.root + "/hello.txt", offset: 10, length: 5) }
        #expect(throws: SWGIError.self) { try posixFileWrapper(path: tree.root + "/nope") }
    }
}

@Suite struct FileRegionThroughMiddleware {
    @Test func observingMiddlewareKeepsTheRegion() throws {
        let tree = Tree()
        let app = App { environ, start in
            let body = try posixFileWrapper(path: tree.root + "/hello.txt")
            try start("200 OK", [("Content-Type", "text/plain")])
            return body
        }
        let environ = Environ(variables: ["REQUEST_METHOD": "GET", "SERVER_NAME": "h", "SERVER_PORT": "80",
                                          "SERVER_PROTOCOL": "HTTP/1.1"])
        let start = StartResponse { _, _, _ in Writer { _ in } }
        let validated = try Validator(app, onViolation: { _ in })(environ, start)
        #expect(validated.fileRegion?.length == 13)
        validated.close()
        let handled = try ErrorHandler(app)(environ, start)
        #expect(handled.fileRegion?.length == 13)
        handled.close()
        #expect(try app(environ, start).map { $0 }.fileRegion == nil)  // map changes the bytes: no region
    }
}
