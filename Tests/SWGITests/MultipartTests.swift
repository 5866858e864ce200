import Testing
@testable import SWGI

@Suite struct MultipartTests {
    static let boundary = "----swgi7MA4YWxkTrZu0gW"

    func body(_ parts: [(headers: String, content: String)], epilogue: String = "") -> [UInt8] {
        var s = "preamble to ignore\r\n"
        for p in parts {
            s += "--\(Self.boundary)\r\n\(p.headers)\r\n\r\n\(p.content)\r\n"
        }
        s += "--\(Self.boundary)--\r\n" + epilogue
        return Array(s.utf8)
    }

    func environ(_ bytes: [UInt8], step: Int = 1 << 20) -> Environ {
        Environ(variables: ["CONTENT_TYPE": "multipart/form-data; boundary=\"\(Self.boundary)\""],
                input: RequestInput(source: DribbleSource(String(decoding: bytes, as: UTF8.self), step: step)))
    }

    @Test(arguments: [1, 3, 7, 64, 1 << 20])
    func fieldsAndFilesAtAnyReadSize(_ step: Int) throws {
        let file = String(repeating: "line of the file\r\n--not-the-boundary\r\n", count: 500)
        let bytes = body([
            ("Content-Disposition: form-data; name=\"title\"", "Hello"),
            ("Content-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\nContent-Type: text/plain", file),
            ("Content-Disposition: form-data; name=\"empty\"", ""),
        ])
        let reader = try environ(bytes, step: step).multipart()
        let title = try #require(try reader.nextPart())
        #expect(title.name == "title" && title.filename == nil)
        #expect(try title.text() == "Hello")
        let upload = try #require(try reader.nextPart())
        #expect(upload.filename == "a.txt" && upload.contentType == "text/plain")
        var received: [UInt8] = []
        while case let block = try upload.read(1000), !block.isEmpty {
            #expect(block.count <= 1000)
            received += block
        }
        #expect(received == Array(file.utf8))
        let empty = try #require(try reader.nextPart())
        #expect(try empty.bytes() == [])
        #expect(try reader.nextPart() == nil)
        #expect(try reader.nextPart() == nil)
    }

    @Test func unreadPartsAreSkipped() throws {
        let bytes = body([("Content-Disposition: form-data; name=\"a\"", "skipped"),
                          ("Content-Disposition: form-data; name=\"b\"", "read")])
        let reader = try environ(bytes, step: 5).multipart()
        _ = try reader.nextPart()
        let b = try #require(try reader.nextPart())
        #expect(b.name == "b")
        #expect(try b.text() == "read")
    }

    @Test func truncatedBodyIsABadRequest() throws {
        var bytes = body([("Content-Disposition: form-data; name=\"a\"", "data")])
        bytes.removeLast(30)
        let reader = try environ(bytes).multipart()
        #expect(throws: SWGIError.self) {
            let part = try reader.nextPart()
            _ = try part?.bytes()
            _ = try reader.nextPart()
        }
    }

    @Test func limitsOnPartsAndHeaders() throws {
        let many = body((0..<5).map { ("Content-Disposition: form-data; name=\"f\($0)\"", "x") })
        let reader = try environ(many).multipart(limits: .init(maxParts: 3))
        #expect(throws: SWGIError.self) { while try reader.nextPart() != nil {} }

        let bigHeader = body([("X-Big: " + String(repeating: "h", count: 10_000), "x")])
        #expect(throws: SWGIError.self) { _ = try environ(bigHeader).multipart().nextPart() }
    }

    @Test func notMultipart() {
        #expect(throws: SWGIError.self) { try Environ(variables: ["CONTENT_TYPE": "text/plain"]).multipart() }
        #expect(throws: SWGIError.self) { try Environ(variables: ["CONTENT_TYPE": "multipart/form-data"]).multipart() }
    }
}
