import Testing
import SWGI
import SWGITesting
@testable import SWGISessions

struct CountVisits: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let session = try #require(environ.session)
        let count = Int(session["count"] ?? "") ?? 1
        session["count"] = String(count + 1)
        if environ.query["logout"] != nil { session.clear() }
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return [Chunk("\(count)")]
    }
}

@Suite struct SessionsTests {
    let key = Array("0123456789abcdef0123456789abcdef".utf8)

    @Test func countsAcrossRequests() {
        let client = TestClient(Sessions(CountVisits(), key: .bytes(key)))
        #expect(client.get("/").text == "1")
        #expect(client.get("/").text == "2")
        let third = client.get("/")
        #expect(third.text == "3")
        let cookie = third.header("Set-Cookie") ?? ""
        #expect(cookie.hasPrefix("swgi_session="))
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"))
        #expect(third.violations.isEmpty)
    }

    @Test func secureUnderHTTPS() {
        let client = TestClient(Sessions(CountVisits(), key: .bytes(key)), environ: ["HTTPS": "1"])
        #expect(client.get("/").header("Set-Cookie")?.contains("; Secure") == true)
    }

    @Test func tamperedCookieIsAnEmptySession() throws {
        let client = TestClient(Sessions(CountVisits(), key: .bytes(key)))
        _ = client.get("/")
        _ = client.get("/")
        let value = try #require(client.cookies["swgi_session"])
        let signer = SessionSigner(key: key)
        #expect(signer.open(value, now: 0)?["count"] == "3")
        // Change one character of the payload, keep the signature.
        var chars = Array(value)
        chars[0] = chars[0] == "A" ? "B" : "A"
        client.cookies["swgi_session"] = String(chars)
        #expect(client.get("/").text == "1")
        for bad in ["", ".", "abc", "abc.def", "a.b.c", String(repeating: "x", count: 5000), "%%%.***"] {
            client.cookies["swgi_session"] = bad
            #expect(client.get("/").text == "1", "cookie \(bad.prefix(20))")
        }
    }

    @Test func otherKeyOrExpiredIsRejected() {
        let signer = SessionSigner(key: key)
        let sealed = signer.seal(["a": "1"], expires: 1000)
        #expect(signer.open(sealed, now: 999)?["a"] == "1")
        #expect(signer.open(sealed, now: 1000) == nil)
        #expect(SessionSigner(key: Array("another key, also 32 bytes long!".utf8)).open(sealed, now: 0) == nil)
    }

    @Test func valuesRoundTripWithAnyCharacters() {
        let signer = SessionSigner(key: key)
        let values = ["user": "ann&bob=ü", "empty": "", "x y": "a+b%20"]
        #expect(signer.open(signer.seal(values, expires: 10), now: 0) == values)
    }

    @Test func clearRemovesTheCookie() {
        let client = TestClient(Sessions(CountVisits(), key: .bytes(key)))
        _ = client.get("/")
        #expect(client.get("/?logout").header("Set-Cookie")?.contains("Max-Age=0") == true)
        #expect(client.cookies["swgi_session"] == nil)
    }

    @Test func shortKeyFailsLoudly() {
        let r = TestClient(Sessions(CountVisits(), key: .environ("KEY")), environ: ["KEY": "short"]).get("/")
        #expect(r.status == 500)
        #expect(r.errors.contains { $0.contains("shorter than 32 bytes") })
    }

    @Test func base64url() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(($0 * 37 + 11) % 256) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.encode(Array("hello?>".utf8)) == "aGVsbG8_Pg")
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("a=") == nil)
        #expect(Base64URL.decode("aB") == nil)  // non-zero leftover bits: not canonical
        #expect(Base64URL.decode("aA") == [0x68])
    }
}
