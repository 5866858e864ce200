import Testing
@testable import SWGI

@Suite struct ResponseHeadTests {
    @Test(arguments: ["200 OK", "404 Not Found", "599 Whatever It Is", "100 Continue"])
    func validStatus(_ status: String) throws {
        let head = try ResponseHead(status: status, headers: [])
        #expect(head.statusLine == status)
        #expect(head.status == Int(status.prefix(3)))
    }

    @Test(arguments: ["200", "200OK", "20 OK", "2000 OK", "abc OK", "099 Low", "200 ", "200 OK\r\nX: y", "200 O\u{7F}K", ""])
    func invalidStatus(_ status: String) {
        #expect(throws: SWGIError.self) { try ResponseHead(status: status, headers: []) }
    }

    @Test(arguments: [
        ("X-Ok", "a\r\nSet-Cookie: evil=1"), ("X-Ok", "line\nbreak"), ("X-Ok", "nul\u{0}"),
        ("X-Ok", "bell\u{07}"), ("Bad Name", "x"), ("", "x"), ("X:Colon", "x"), ("Na\u{E9}me", "x"),
        ("Connection", "close"), ("keep-alive", "5"), ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c"),
        ("TE", "trailers"), ("Proxy-Authenticate", "x"), ("Status", "200 OK"),
        ("Content-Length", "12a"), ("Content-Length", "-1"), ("Content-Length", ""),
    ])
    func invalidHeaders(_ header: (String, String)) {
        #expect(throws: SWGIError.self) { try ResponseHead(status: "200 OK", headers: [header]) }
    }

    @Test func validHeadersKeepOrderAndRepeats() throws {
        let headers = [("Set-Cookie", "a=1"), ("Content-Type", "text/plain"), ("Set-Cookie", "b=2"),
                       ("X-Tab", "a\tb"), ("X-Utf8", "caf\u{E9}"), ("Content-Length", "42")]
        let head = try ResponseHead(status: "200 OK", headers: headers)
        #expect(head.headers.map(\.0) == headers.map(\.0))
        #expect(head.contentLength == 42)
        #expect(head.value(of: "content-type") == "text/plain")
    }

    @Test(arguments: ["connection", "KEEP-ALIVE", "Proxy-Authenticate", "proxy-AUTHORIZATION", "te", "Te",
                      "Trailer", "TRAILERS", "transfer-encoding", "UpGrade", "STATUS", "status"])
    func forbiddenNamesInAnyCase(_ name: String) {
        #expect(throws: SWGIError.self) { try ResponseHead(status: "200 OK", headers: [(name, "x")]) }
    }

    // Names of a forbidden name's length (or Content-Length's) that differ
    // in one character, including token characters one bit away from a
    // letter or from `-` (`^` is `~` less bit 5, `-` is `\r` plus it).
    @Test(arguments: ["Connectioo", "Keep_Alive", "Keep^Alive", "T~", "T^", "Trailerz", "Statu5", "Upgrad3",
                      "X-Content-Type", "Content_Length", "Content-Lengti", "ContentXLength", "Transfer-Encodin9",
                      "Proxy-Authorizatio", "Proxy-Authenticat3", "Content-Lengthy"])
    func nearMissesAreOrdinaryHeaders(_ name: String) throws {
        let head = try ResponseHead(status: "200 OK", headers: [(name, "x")])
        #expect(head.contentLength == nil)
        #expect(head.headers.first?.0 == name)
    }

    @Test func contentLengthInAnyCaseUpTo18Digits() throws {
        #expect(try ResponseHead(status: "200 OK", headers: [("CONTENT-length", "0")]).contentLength == 0)
        let most = String(repeating: "9", count: 18)
        #expect(try ResponseHead(status: "200 OK", headers: [("content-Length", most)]).contentLength == Int(most))
        #expect(throws: SWGIError.self) {
            try ResponseHead(status: "200 OK", headers: [("Content-Length", most + "9")])
        }
        #expect(throws: SWGIError.self) {
            try ResponseHead(status: "200 OK", headers: [("Content-Length", " 1")])
        }
        let same = try ResponseHead(status: "200 OK", headers: [("Content-Length", "7"), ("content-length", "007")])
        #expect(same.contentLength == 7)
    }

    @Test func conflictingContentLengths() {
        #expect(throws: SWGIError.self) {
            try ResponseHead(status: "200 OK", headers: [("Content-Length", "1"), ("content-length", "2")])
        }
    }

    @Test func errorMessagesEscapeControlCharacters() {
        do {
            _ = try ResponseHead(status: "200 OK", headers: [("X", "a\r\nb")])
            Issue.record("expected an error")
        } catch let error as SWGIError {
            #expect(error.code == .invalidHeader)
            #expect(!error.message.contains("\r"))
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
