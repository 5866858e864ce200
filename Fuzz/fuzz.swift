// libFuzzer target for what parses untrusted bytes in SWGI: the query,
// form, multipart and cookie parsers, header and status validation,
// PATH_INFO handling and the session cookie verifier. Built against SWGI and
// SWGISessions compiled for libFuzzer (see scripts/fuzz); SWGI_FUZZ_TARGET
// chooses what the input is fed to. A crash, a trap, an ASan report or a
// broken invariant below is a finding.
#if canImport(Glibc)
import Glibc
#endif
@testable import SWGI
@testable import SWGISessions

enum FuzzTarget: String {
    case query, cookies, form, multipart, headers, status, path, session
}

let sessionKey = [UInt8](repeating: 0x6b, count: 32)

let target: FuzzTarget = {
    guard let name = getenv("SWGI_FUZZ_TARGET"), let t = FuzzTarget(rawValue: String(cString: name)) else {
        fatalError("set SWGI_FUZZ_TARGET to one of query, cookies, form, multipart, headers, status, path, session")
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    switch target {
    case .query:
        let q = QueryParameters(parsing: text)
        for (name, _) in q { precondition(q[name] != nil) }
        _ = QueryParameters.decode(bytes)
    case .cookies:
        let c = Cookies(header: text)
        for (name, _) in c { precondition(!name.isEmpty && c[name] != nil) }
    case .form:
        let environ = Environ(variables: ["CONTENT_TYPE": "application/x-www-form-urlencoded",
                                          "CONTENT_LENGTH": String(bytes.count)],
                              input: RequestInput(bytes: bytes))
        _ = try? environ.form(limit: 1 << 16)
    case .multipart:
        // The first line is the boundary; the rest is the body.
        let split = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        let boundary = String(decoding: bytes[..<split], as: UTF8.self)
        let body = Array(bytes[min(split + 1, bytes.count)...])
        let environ = Environ(variables: ["CONTENT_TYPE": "multipart/form-data; boundary=" + boundary],
                              input: RequestInput(bytes: body))
        if let reader = try? environ.multipart(limits: .init(maxParts: 16, maxHeaderBytes: 1024)) {
            var parts = 0
            while parts < 32, let part = try? reader.nextPart() {
                _ = try? part.bytes(limit: 1 << 16)
                parts += 1
            }
        }
    case .headers:
        // Lines of name: value.
        var headers: [(String, String)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
        }
        if let head = try? ResponseHead(status: "200 OK", headers: headers) {
            for (name, value) in head.headers {
                precondition(!name.isEmpty && !value.utf8.contains(10) && !value.utf8.contains(13))
            }
        }
    case .status:
        if let head = try? ResponseHead(status: text, headers: []) {
            precondition((100...999).contains(head.status))
        }
    case .path:
        var environ = Environ(variables: ["SCRIPT_NAME": "/app", "PATH_INFO": text])
        var steps = 0
        while steps < 64, let segment = environ.shiftPathInfo() {
            precondition(!segment.contains("/"))
            steps += 1
        }
        _ = environ.applicationURI
        _ = environ.requestURI()
    case .session:
        // The first byte chooses: a cookie as the client sent it, or a
        // payload signed with the key (to reach what follows the MAC check).
        guard let mode = bytes.first else { break }
        let signer = SessionSigner(key: sessionKey)
        let rest = Array(bytes.dropFirst())
        let cookie = mode & 1 == 0 ? String(decoding: rest, as: UTF8.self) : signer.sign(rest)
        if let values = signer.open(cookie, now: 1_000_000_000) {
            // Accepted: exactly the cookie this key makes for that payload
            // (no second spelling of a signed cookie is accepted).
            let payload = Base64URL.decode(String(cookie.split(separator: ".", omittingEmptySubsequences: false)[0]))!
            precondition(signer.sign(payload) == cookie)
            // And its values survive a new seal.
            precondition(signer.open(signer.seal(values, expires: 2_000_000_000), now: 1_000_000_000) == values)
        }
        // Base64URL: what decodes encodes back to the same text, and the reverse.
        if let decoded = Base64URL.decode(text) {
            precondition(Base64URL.encode(decoded) == text)
        }
        precondition(Base64URL.decode(Base64URL.encode(rest)) == rest)
    }
    return 0
}
