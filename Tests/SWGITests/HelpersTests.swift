import Testing
@testable import SWGI

@Suite struct ShiftPathInfoTests {
    // Cases from wsgiref's own tests of shift_path_info.
    @Test(arguments: [
        ("", "/a/b", "a", "/a", "/b"),
        ("/x", "/a/b", "a", "/x/a", "/b"),
        ("/x", "/a/", "a", "/x/a", "/"),
        ("/x", "/a", "a", "/x/a", ""),
        ("/x", "//a//b", "a", "/x/a", "/b"),
        ("/x", "/./a", "a", "/x/a", ""),
        ("/x", "/", "", "/x/", ""),
        ("", "/", "", "/", ""),
        ("/x/", "/a", "a", "/x/a", ""),
        ("/x", "/..", "..", "", ""),  // normpath("/x/..") is "/", then stripped
    ])
    func shifts(_ c: (String, String, String, String, String)) {
        var environ = Environ(variables: ["SCRIPT_NAME": c.0, "PATH_INFO": c.1])
        #expect(environ.shiftPathInfo() == c.2)
        #expect(environ.scriptName == c.3)
        #expect(environ.pathInfo == c.4)
    }

    @Test func emptyPathInfoShiftsNothing() {
        var environ = Environ(variables: ["SCRIPT_NAME": "/x", "PATH_INFO": ""])
        #expect(environ.shiftPathInfo() == nil)
        #expect(environ.scriptName == "/x")
    }

    @Test func dotIsNotAName() {
        var environ = Environ(variables: ["SCRIPT_NAME": "/x", "PATH_INFO": "/."])
        #expect(environ.shiftPathInfo() == nil)
    }

    /// Found by fuzzing: U+06DD before "/" is one `Character` with it, so a
    /// split by characters returned a segment holding a "/". Split by bytes.
    @Test func aSlashInsideAGraphemeStillSeparates() {
        var environ = Environ(variables: ["SCRIPT_NAME": "/x", "PATH_INFO": "/\u{6DD}/etc/passwd"])
        let first = environ.shiftPathInfo()
        #expect(first == "\u{6DD}")
        #expect(environ.pathInfo == "/etc/passwd")
        #expect(environ.shiftPathInfo() == "etc")
        #expect(environ.shiftPathInfo() == "passwd")
        // Combining marks after a slash do not hide it either.
        environ = Environ(variables: ["SCRIPT_NAME": "", "PATH_INFO": "/a/\u{301}b"])
        #expect(environ.shiftPathInfo() == "a")
        #expect(environ.pathInfo == "/\u{301}b")
        #expect(Environ.normalizePath("/a/\u{6DD}/../b") == "/a/b")
    }
}

@Suite struct URITests {
    // PEP 3333's URL reconstruction, wsgiref's request_uri.
    @Test func requestURI() {
        let environ = Environ(variables: ["HTTP_HOST": "example.com:8080", "SCRIPT_NAME": "/app",
                                          "PATH_INFO": "/a b/ü", "QUERY_STRING": "x=1&y=%20"])
        #expect(environ.requestURI() == "http://example.com:8080/app/a%20b/%C3%BC?x=1&y=%20")
        #expect(environ.requestURI(includeQuery: false) == "http://example.com:8080/app/a%20b/%C3%BC")
        #expect(environ.applicationURI == "http://example.com:8080/app/")
    }

    @Test func hostFromServerNameAndPort() {
        #expect(Environ(variables: ["SERVER_NAME": "h", "SERVER_PORT": "80"]).host == "h")
        #expect(Environ(variables: ["SERVER_NAME": "h", "SERVER_PORT": "8000"]).host == "h:8000")
        #expect(Environ(variables: ["SERVER_NAME": "h", "SERVER_PORT": "443", "HTTPS": "1"]).host == "h")
        #expect(Environ(variables: ["SERVER_NAME": "h", "SERVER_PORT": "443"]).host == "h:443")
    }

    @Test func statusLines() {
        #expect(HTTPStatus.line(404) == "404 Not Found")
        #expect(HTTPStatus.line(599) == "599 Unknown")
        #expect(throws: Never.self) { try ResponseHead(status: HTTPStatus.line(418), headers: []) }
    }
}

@Suite struct CookieTests {
    @Test func parsesACookieHeader() {
        let cookies = Cookies(header: "a=1; b=\"two\";c=3 ; bad; =x; a=again; d=")
        #expect(cookies["a"] == "1")
        #expect(cookies["b"] == "two")
        #expect(cookies["c"] == "3")
        #expect(cookies["d"] == "")
        #expect(cookies["bad"] == nil)
        #expect(cookies.pairs.count == 5)
    }

    @Test func buildsSetCookie() throws {
        let c = SetCookie(name: "sid", value: "abc.def", maxAge: 60, secure: true)
        #expect(try c.headerValue() == "sid=abc.def; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax")
        #expect(throws: SWGIError.self) { try SetCookie(name: "s id", value: "x").headerValue() }
        #expect(throws: SWGIError.self) { try SetCookie(name: "sid", value: "a;b").headerValue() }
        #expect(throws: SWGIError.self) { try SetCookie(name: "sid", value: "a\r\nb").headerValue() }
    }
}

@Suite struct FormTests {
    func environ(_ body: String, type: String) -> Environ {
        Environ(variables: ["CONTENT_TYPE": type, "CONTENT_LENGTH": String(body.utf8.count)],
                input: RequestInput(bytes: Array(body.utf8)))
    }

    @Test func urlencodedForm() throws {
        let form = try environ("myparam=42&x=a+b", type: "application/x-www-form-urlencoded; charset=utf-8").form()
        #expect(form["myparam"] == "42")
        #expect(form["x"] == "a b")
    }

    @Test func otherTypesGiveNoParameters() throws {
        #expect(try environ("myparam=42", type: "text/plain").form().pairs.isEmpty)
    }

    @Test func formOverTheLimitThrows() {
        #expect(throws: SWGIError.self) {
            try environ(String(repeating: "a", count: 100), type: "application/x-www-form-urlencoded").form(limit: 10)
        }
    }

    @Test func headerParameters() {
        let p = HeaderParameters(#"form-data; name="field"; filename="a \"q\"; b.txt""#)
        #expect(p.value == "form-data")
        #expect(p.parameters["name"] == "field")
        #expect(p.parameters["filename"] == #"a "q"; b.txt"#)
    }

    @Test func requestedType() {
        let environ = Environ(variables: ["QUERY_STRING": "type=atom"])
        #expect(environ.requestedType(offered: ["xhtml", "xml", "atom"], default: "xhtml") == "atom")
        #expect(Environ(variables: ["QUERY_STRING": "type=evil"]).requestedType(offered: ["xml"], default: "xml") == "xml")
    }
}
