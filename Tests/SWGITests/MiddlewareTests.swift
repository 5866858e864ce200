import Testing
@testable import SWGI
import SWGITesting

/// Answers "SCRIPT_NAME|PATH_INFO".
struct Where: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return [Chunk("\(environ.scriptName)|\(environ.pathInfo)")]
    }
}

struct Failure: Error, CustomStringConvertible {
    let description: String
}

@Suite struct URLMapTests {
    @Test func longestPrefixWinsAndPathsMove() {
        let app = URLMap(["/app1": Where(), "/app1/deep": Where(), "/": Where()])
        let client = TestClient(app)
        #expect(client.get("/app1").text == "/app1|")
        #expect(client.get("/app1/x/y").text == "/app1|/x/y")
        #expect(client.get("/app1/deep/z").text == "/app1/deep|/z")
        #expect(client.get("/app10").text == "|/app10")
        #expect(client.get("/").text == "|/")
        #expect(client.get("/app1/x").violations.isEmpty)
    }

    /// A combining mark right after the prefix's "/" makes one `Character`
    /// of the two: the prefix still matches, by bytes.
    @Test func prefixesMatchByBytes() {
        let client = TestClient(URLMap(["/app": Where()]))
        #expect(client.get("/app/\u{301}x").text == "/app|/\u{301}x")
        #expect(client.get("/app\u{301}/x").status == 404)
    }

    @Test func nestedMapsUnderAMountPoint() {
        let app = URLMap(["/api": URLMap(["/v1": Where()])])
        let client = TestClient(app, scriptName: "/site")
        #expect(client.get("/site/api/v1/items/3").text == "/site/api/v1|/items/3")
        let missing = client.get("/site/other")
        #expect(missing.status == 404)
        #expect(missing.violations.isEmpty)
    }
}

@Suite struct MethodDispatcherTests {
    @Test func dispatchesAndAnswers405WithAllow() {
        let app = MethodDispatcher(["GET": Where(), "POST": Where()])
        let client = TestClient(app)
        #expect(client.get("/").status == 200)
        #expect(client.post("/", body: []).status == 200)
        #expect(client.head("/").status == 200)
        let put = client.put("/", body: Array("x".utf8))
        #expect(put.status == 405)
        #expect(put.header("Allow") == "GET, HEAD, POST")
        #expect(put.violations.isEmpty)
    }
}

@Suite struct ErrorHandlerTests {
    @Test func throwingApplicationGets500Page() {
        let app = ErrorHandler(App { _, _ in throw Failure(description: "boom") }, showDetails: true)
        let r = TestClient(app).get("/")
        #expect(r.status == 500)
        #expect(r.text == "Internal Server Error: boom")
        #expect(r.errors.contains { $0.contains("boom") })
        #expect(r.violations.isEmpty)
        #expect(TestClient(ErrorHandler(App { _, _ in throw Failure(description: "secret") })).get("/").text == "Internal Server Error")
    }

    @Test func errorInTheBodyBeforeAnyByteIsStillA500() {
        let app = ErrorHandler(App { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return Body(next: { throw Failure(description: "late") })
        })
        let r = TestClient(app).get("/")
        #expect(r.status == 500)
        #expect(r.text == "Internal Server Error")
        #expect(r.violations.isEmpty)
    }

    @Test func errorAfterBytesCutsTheResponse() {
        let app = ErrorHandler(App { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            var n = 0
            return Body(next: {
                n += 1
                if n == 1 { return "sent" }
                throw Failure(description: "too late")
            })
        })
        let r = TestClient(app).get("/")
        #expect(r.wasCut)
        #expect(r.text == "sent")
    }
}

@Suite struct ValidatorTests {
    @Test func validApplicationHasNoViolations() {
        let r = TestClient(Where()).get("/x?y=1")
        #expect(r.violations.isEmpty)
    }

    @Test func missingContentType() {
        let app = App { _, start in
            try start("200 OK", [])
            return ["x"]
        }
        #expect(TestClient(app).get("/").violations == ["no Content-Type header in a 200 response"])
    }

    @Test func contentTypeOn204() {
        let app = App { _, start in
            try start("204 No Content", [("Content-Type", "text/plain")])
            return []
        }
        #expect(TestClient(app).get("/").violations == ["Content-Type in a 204 response, which has no content"])
    }

    @Test func badStatusAndSecondStart() {
        let app = App { _, start in
            _ = try? start("200OK", [])
            try start("200 OK", [("Content-Type", "text/plain")])
            _ = try? start("201 Created", [("Content-Type", "text/plain")])
            return ["x"]
        }
        let v = TestClient(app).get("/").violations
        #expect(v.count == 2)
        #expect(v[0].contains("invalid status"))
        #expect(v[1].contains("second time without excInfo"))
    }

    @Test func bodyWithoutStart() {
        let v = TestClient(App { _, _ in ["x"] }).get("/").violations
        #expect(v == ["the application returned a body without calling startResponse"])
    }

    @Test func environChecks() {
        let problems = Validator<Where>.checkEnviron(Environ(variables: [
            "REQUEST_METHOD": "GE T", "SERVER_NAME": "h", "SERVER_PORT": "http",
            "SCRIPT_NAME": "/", "PATH_INFO": "x", "HTTP_CONTENT_TYPE": "text/plain",
        ], urlScheme: "ftp"))
        #expect(problems.contains { $0.contains("SERVER_PROTOCOL") })
        #expect(problems.contains { $0.contains("REQUEST_METHOD") && $0.contains("token") })
        #expect(problems.contains { $0.contains("SERVER_PORT") })
        #expect(problems.contains { $0.contains("must not be \"/\"") })
        #expect(problems.contains { $0.contains("PATH_INFO") })
        #expect(problems.contains { $0.contains("HTTP_CONTENT_TYPE") })
        #expect(problems.contains { $0.contains("ftp") })
    }

    @Test func serverThatNeverClosesIsReported() {
        let found = ViolationBox()
        do {
            let app = Validator(Where(), onViolation: { found.add($0) })
            let environ = Environ(variables: ["REQUEST_METHOD": "GET", "SERVER_NAME": "h", "SERVER_PORT": "80",
                                              "SERVER_PROTOCOL": "HTTP/1.1"])
            _ = try? app(environ, StartResponse { _, _, _ in Writer { _ in } })
        }
        #expect(found.messages == ["the server never called close() on the body"])
    }
}

final class ViolationBox: @unchecked Sendable {
    var messages: [String] = []
    func add(_ m: String) { messages.append(m) }
}

@Suite struct TestClientTests {
    @Test func cookiesComeBack() {
        let app = App { environ, start in
            let n = Int(environ.cookies["n"] ?? "0") ?? 0
            try start("200 OK", [("Content-Type", "text/plain"),
                                 ("Set-Cookie", try SetCookie(name: "n", value: String(n + 1)).headerValue())])
            return [Chunk(String(n))]
        }
        let client = TestClient(app)
        #expect(client.get("/").text == "0")
        #expect(client.get("/").text == "1")
        #expect(client.cookies["n"] == "2")
    }

    @Test func environLooksLikeAServers() {
        let client = TestClient(App { environ, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            let body = try environ.input.read()
            return [Chunk("\(environ.requestMethod) \(environ.pathInfo) \(environ.queryString) \(environ["CONTENT_LENGTH"] ?? "-") \(environ["HTTP_X_A"] ?? "-") \(body.count)")]
        })
        let r = client.request("POST", "/a%20b?q=1+2", headers: [("X-A", "1"), ("X-A", "2")], body: Array("hello".utf8))
        #expect(r.text == "POST /a b q=1+2 5 1, 2 5")
        #expect(r.violations.isEmpty)
    }
}
