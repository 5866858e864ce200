import Testing
@testable import SWGI

@Suite struct EnvironTests {
    @Test func invalidUTF8KeepsTheExactBytes() {
        var environ = Environ(variables: [:])
        let raw: [UInt8] = [0x2F, 0x63, 0x61, 0x66, 0xE9]  // "/caf" + Latin-1 é
        raw.withUnsafeBytes { environ.set("PATH_INFO", bytes: $0) }
        #expect(environ["PATH_INFO"] == "/caf\u{FFFD}")
        #expect(environ.bytes("PATH_INFO") == raw)
        #expect(Array(environ.undecodableKeys) == ["PATH_INFO"])
        environ["PATH_INFO"] = "/ok"
        #expect(environ.bytes("PATH_INFO") == Array("/ok".utf8))
        #expect(environ.undecodableKeys.isEmpty)
    }

    @Test func validUTF8IsDecoded() {
        var environ = Environ(variables: [:])
        Array("/café".utf8).withUnsafeBytes { environ.set("PATH_INFO", bytes: $0) }
        #expect(environ.pathInfo == "/café")
        #expect(environ.undecodableKeys.isEmpty)
    }

    /// The decoding the environ's lookups use gives what `String(decoding:)`
    /// gives: short values (small strings) and long ones, valid and not.
    @Test(arguments: [
        [], [0x41], Array("/café".utf8), [0x2F, 0x63, 0x61, 0x66, 0xE9], [0xFF, 0xFE, 0x41],
        [0xE2, 0x82], Array(repeating: 0x61, count: 15), Array(repeating: 0x61, count: 16),
        Array("/a/path/longer/than/fifteen/bytes/".utf8) + [0xC3] + Array("/end".utf8),
        Array("Mozilla/5.0 (X11; Linux x86_64) äöü".utf8),
    ] as [[UInt8]])
    func lookupsDecodeAsStringDecodingDoes(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { b in
            let ours = String(utf8Repairing: b)
            let reference = String(decoding: b, as: UTF8.self)
            #expect(ours == reference)
            #expect(Array(ours.utf8) == Array(reference.utf8))
        }
    }

    @Test(arguments: [("1", "https"), ("on", "https"), ("ON", "https"), ("off", "http"), (nil, "http")])
    func urlSchemeFollowsHTTPS(_ https: String?, _ scheme: String) {
        var vars: [String: String] = [:]
        vars["HTTPS"] = https
        #expect(Environ(variables: vars).urlScheme == scheme)
    }

    @Test func valueSemanticsForMiddleware() {
        let environ = Environ(variables: ["SCRIPT_NAME": "", "PATH_INFO": "/a/b"])
        var inner = environ
        inner["SCRIPT_NAME"] = "/a"
        inner["PATH_INFO"] = "/b"
        #expect(environ.pathInfo == "/a/b")
        #expect(inner.scriptName == "/a")
    }

    /// A server's request for an environ whose input and errors are made
    /// when first used: the body's bytes, and the lines logged.
    final class LazyHost: RequestHost {
        var body: [UInt8]
        var reads = 0
        var lines: [String] = []
        init(_ body: String) { self.body = Array(body.utf8) }

        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            reads += 1
            let n = min(buffer.count, body.count)
            buffer.copyBytes(from: body[..<n])
            body.removeFirst(n)
            return n
        }

        func logError(_ line: String) { lines.append(line) }
    }

    @Test func inputAndErrorsMadeOnFirstUseAreSharedByCopies() throws {
        let host = LazyHost("one\ntwo\n")
        var environ = Environ(source: EnvironSource(), host: host, multithread: false,
                              multiprocess: false, runOnce: false, fileWrapper: nil)
        environ["SCRIPT_NAME"] = "/app"  // a copy of the storage: input and errors made first
        #expect(host.reads == 0)
        var copy = environ
        copy["PATH_INFO"] = "/y"  // another copy
        #expect(try environ.input.readLine() == Array("one\n".utf8))
        #expect(try copy.input.readLine() == Array("two\n".utf8))  // the same stream
        environ.errors.write("half a ")
        copy.errors.write("line\n")
        #expect(host.lines == ["half a line"])
        // One made from a copy is seen by the environ it came from.
        let fresh = Environ(source: EnvironSource(), host: LazyHost(""), multithread: false,
                            multiprocess: false, runOnce: false, fileWrapper: nil)
        var changed = fresh
        changed["A"] = "1"
        changed.errors.write("from the copy")
        fresh.flushErrors()
        #expect((fresh.errors === changed.errors))
    }

    /// What a host asks at the end of a request: does anything still read
    /// the request's variables? The source here is also held elsewhere (as
    /// the bridge's host holds itself), so only environs count.
    @Test func sharedSourceCountsTheEnvironsThatReadIt() {
        func made(_ source: EnvironSource) -> Environ {
            Environ(source: source, host: LazyHost(""), multithread: false, multiprocess: false, runOnce: false,
                    fileWrapper: nil)
        }
        let one = EnvironSource(), two = EnvironSource(), three = EnvironSource()
        var alone = made(one)
        #expect(alone.sharedSource() == nil)

        var kept = made(two)
        let copy = kept  // the same storage, kept
        #expect(kept.sharedSource() === two)
        _ = copy

        var original = made(three)
        var changed: Environ? = original
        changed?["X"] = "1"  // a storage of its own, reading the same source
        #expect(original.sharedSource() === three)
        changed = nil  // dropped: nothing else reads it
        #expect(original.sharedSource() == nil)
        _ = changed
        #expect(alone.sharedSource() == nil)  // the others' environs are not its readers

        var fromDictionary = Environ(variables: ["A": "1"])
        #expect(fromDictionary.sharedSource() == nil)
    }
}

@Suite struct QueryParametersTests {
    @Test func parsesPairsInOrder() {
        let q = QueryParameters(parsing: "name=John+Smith&tag=a&tag=b%20c&empty=&flag&caf%C3%A9=%E2%9C%93")
        #expect(q["name"] == "John Smith")
        #expect(q.all("tag") == ["a", "b c"])
        #expect(q["empty"] == "")
        #expect(q["flag"] == "")
        #expect(q["café"] == "✓")
        #expect(q["missing"] == nil)
    }

    @Test func malformedPercentEscapesStayLiteral() {
        let q = QueryParameters(parsing: "a=%&b=%4&c=%zz&d=100%")
        #expect(q["a"] == "%")
        #expect(q["b"] == "%4")
        #expect(q["c"] == "%zz")
        #expect(q["d"] == "100%")
    }

    @Test func invalidUTF8BecomesReplacementCharacters() {
        #expect(QueryParameters(parsing: "n=%FF")["n"] == "\u{FFFD}")
    }
}

@Suite struct ChunkAndBodyTests {
    @Test func chunksCompareByBytes() {
        #expect(Chunk("abc") == Chunk(Array("abc".utf8)))
        #expect(Chunk("é").count == 2)
        let name = "x"
        let c: Chunk = "hi \(name)"
        #expect(c.bytes == Array("hi x".utf8))
    }

    @Test func mapKeepsCloseAndLaziness() throws {
        let counter = CloseCounter()
        var pulled = 0
        let body = Body(next: {
            pulled += 1
            return pulled <= 2 ? "a" : nil
        }, onClose: counter.close)
        let upper = body.map { Chunk($0.description.uppercased()) }
        #expect(pulled == 0)
        var it = upper.makeIterator()
        #expect(try it.next() == "A")
        #expect(pulled == 1)
        upper.close()
        #expect(counter.count == 1)
        #expect(upper.readyChunks == nil)
        #expect(Body(["a", "b"]).readyChunks?.count == 2)
    }
}
