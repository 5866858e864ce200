internal import Crypto
public import SWGI

#if canImport(Glibc)
import Glibc
#endif

/// Sessions kept in a signed cookie: the values live in the client's
/// cookie, signed with HMAC-SHA256 (swift-crypto) so that they cannot be
/// forged or changed, with an expiry inside the signed part. A cookie that
/// is tampered with, expired or malformed is an empty session, never an
/// error. The cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` under https.
///
/// ```swift
/// let app = Sessions(Counter(), key: .environ("SWGI_SESSION_KEY"))
///
/// // in Counter:
/// let session = environ.session!
/// let count = Int(session["count"] ?? "") ?? 1
/// session["count"] = String(count + 1)
/// ```
///
/// Values are strings; the cookie must stay under ~4 KB, so keep sessions small.
public struct Sessions<Wrapped: Application>: Application {
    public enum Key: Sendable {
        /// A key the application holds: at least 32 random bytes.
        case bytes([UInt8])
        /// A key in an environ variable (for example from `SetEnv`), whose
        /// UTF-8 bytes are the key: at least 32 of them.
        case environ(String)
    }

    public let wrapped: Wrapped
    public let key: Key
    public let cookieName: String
    /// Seconds a session lives after its last change.
    public let maxAge: Int

    public init(_ wrapped: Wrapped, key: Key, cookieName: String = "swgi_session", maxAge: Int = 14 * 24 * 3600) {
        self.wrapped = wrapped
        self.key = key
        self.cookieName = cookieName
        self.maxAge = maxAge
    }

    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let secret: [UInt8]
        switch key {
        case .bytes(let b): secret = b
        case .environ(let name): secret = Array((environ[name] ?? "").utf8)
        }
        guard secret.count >= 32 else {
            throw SWGIError(.badRequest, "session key is missing or shorter than 32 bytes (\(keyDescription))")
        }
        let signer = SessionSigner(key: secret)
        let now = Int(time(nil))
        let session = Session(values: environ.cookies[cookieName].flatMap { signer.open($0, now: now) } ?? [:])
        var inner = environ
        inner.objects[Session.environKey] = session
        let secure = environ.urlScheme == "https"
        let start = StartResponse { status, headers, excInfo in
            var headers = headers
            if session.modified {
                let value = session.values.isEmpty ? "" : signer.seal(session.values, expires: now + maxAge)
                let cookie = SetCookie(name: cookieName, value: value, maxAge: session.values.isEmpty ? 0 : maxAge,
                                       secure: secure, httpOnly: true, sameSite: .lax)
                headers.append(("Set-Cookie", try cookie.headerValue()))
            }
            return try startResponse(status, headers, excInfo: excInfo)
        }
        return try wrapped(inner, start)
    }

    private var keyDescription: String {
        switch key {
        case .bytes: return "key given in code"
        case .environ(let name): return "environ variable \(name)"
        }
    }
}

/// One request's session: string values by name. Changes are sent back in
/// the cookie when the response starts.
public final class Session {
    public static let environKey = "swgi.session"

    public private(set) var values: [String: String]
    public private(set) var modified = false

    init(values: [String: String]) {
        self.values = values
    }

    public subscript(name: String) -> String? {
        get { values[name] }
        set {
            values[name] = newValue
            modified = true
        }
    }

    /// Forgets every value (the cookie is removed).
    public func clear() {
        values = [:]
        modified = true
    }
}

extension Environ {
    /// The session, inside ``Sessions``.
    public var session: Session? { objects[Session.environKey] as? Session }
}

/// Signs and verifies session cookies: `base64url(payload).base64url(mac)`,
/// the payload `expires` then `&`-joined `name=value` pairs (percent-encoded).
struct SessionSigner {
    let key: SymmetricKey

    init(key: [UInt8]) {
        self.key = SymmetricKey(data: key)
    }

    func seal(_ values: [String: String], expires: Int) -> String {
        let pairs = values.sorted { $0.key < $1.key }
            .map { URLEncoding.escapeComponent($0.key) + "=" + URLEncoding.escapeComponent($0.value) }
        return sign(Array(([String(expires)] + pairs).joined(separator: "&").utf8))
    }

    /// The cookie for a payload: `base64url(payload).base64url(mac)`.
    func sign(_ payload: [UInt8]) -> String {
        let encoded = Base64URL.encode(payload)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(encoded.utf8), using: key)
        return encoded + "." + Base64URL.encode(Array(mac))
    }

    /// The values, or nil when the cookie is forged, changed, expired or malformed.
    func open(_ cookie: String, now: Int) -> [String: String]? {
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let mac = Base64URL.decode(String(parts[1])), mac.count == 32 else { return nil }
        // Constant-time comparison, by swift-crypto.
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(parts[0].utf8), using: key),
              let payload = Base64URL.decode(String(parts[0])) else { return nil }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "&", omittingEmptySubsequences: false)
        guard let expires = fields.first.flatMap({ Int($0) }), expires > now else { return nil }
        var values: [String: String] = [:]
        for (name, value) in QueryParameters(parsing: fields.dropFirst().joined(separator: "&")) {
            values[name] = value
        }
        return values
    }
}

/// Base64 with the URL alphabet and no padding (RFC 4648 §5).
enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 3) << 4 | b1 >> 4)])
            if i + 1 < bytes.count { out.append(alphabet[Int((b1 & 15) << 2 | b2 >> 6)]) }
            if i + 2 < bytes.count { out.append(alphabet[Int(b2 & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(c - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(c - 97 + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(c - 48 + 52)
            case UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "_"): values.append(63)
            default: return nil
            }
        }
        if values.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < values.count {
            let n = min(4, values.count - i)
            let v0 = values[i], v1 = values[i + 1]
            // Canonical only: the bits a short last group leaves over are zero.
            if (n == 2 && v1 & 15 != 0) || (n == 3 && values[i + 2] & 3 != 0) { return nil }
            out.append(v0 << 2 | v1 >> 4)
            if n > 2 { out.append((v1 & 15) << 4 | values[i + 2] >> 2) }
            if n > 3 { out.append((values[i + 2] & 3) << 6 | values[i + 3]) }
            i += 4
        }
        return out
    }
}
