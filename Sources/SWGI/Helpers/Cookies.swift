/// Cookies: parsing the request's `Cookie` header (RFC 6265 §5.4) and
/// building `Set-Cookie` values.
///
/// ```swift
/// let theme = environ.cookies["theme"]
/// try startResponse("200 OK", [("Set-Cookie", SetCookie(name: "theme", value: "dark", maxAge: 86400).headerValue)])
/// ```
public struct Cookies: Sendable, Sequence {
    public let pairs: [(String, String)]

    /// Parses a `Cookie` header: `name=value` pairs separated by `;`.
    /// Pairs without `=` or with an empty name are skipped; double quotes
    /// around a value are removed; nothing is percent-decoded.
    public init(header: String) {
        var header = header
        pairs = header.withUTF8 { Self.parse($0) }
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> [(String, String)] {
        var pairs: [(String, String)] = []
        forEachPart(of: bytes, separatedBy: UInt8(ascii: ";")) { part, eq in
            guard let eq else { return }
            let name = trimmed(bytes, part.lowerBound, eq)
            var value = trimmed(bytes, eq + 1, part.upperBound)
            if value.count >= 2, bytes[value.lowerBound] == UInt8(ascii: "\""),
               bytes[value.upperBound - 1] == UInt8(ascii: "\"") {
                value = (value.lowerBound + 1)..<(value.upperBound - 1)
            }
            if !name.isEmpty {
                pairs.append((String(decoding: UnsafeBufferPointer(rebasing: bytes[name]), as: UTF8.self),
                              String(decoding: UnsafeBufferPointer(rebasing: bytes[value]), as: UTF8.self)))
            }
        }
        return pairs
    }

    /// `from..<to` without the spaces and tabs at either end.
    private static func trimmed(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Range<Int> {
        var a = from, b = to
        while a < b && (bytes[a] == UInt8(ascii: " ") || bytes[a] == UInt8(ascii: "\t")) { a += 1 }
        while b > a && (bytes[b - 1] == UInt8(ascii: " ") || bytes[b - 1] == UInt8(ascii: "\t")) { b -= 1 }
        return a..<b
    }

    /// The first value of the cookie `name`.
    public subscript(name: String) -> String? {
        pairs.first(where: { $0.0 == name })?.1
    }

    public func makeIterator() -> IndexingIterator<[(String, String)]> {
        pairs.makeIterator()
    }
}

extension Environ {
    /// The request's cookies (`HTTP_COOKIE`).
    public var cookies: Cookies { Cookies(header: self["HTTP_COOKIE"] ?? "") }
}

/// A `Set-Cookie` header value.
public struct SetCookie: Sendable {
    public enum SameSite: String, Sendable { case strict = "Strict", lax = "Lax", none = "None" }

    public var name: String
    public var value: String
    public var path: String? = "/"
    public var domain: String?
    public var maxAge: Int?
    public var secure = false
    public var httpOnly = true
    public var sameSite: SameSite? = .lax

    public init(name: String, value: String, path: String? = "/", domain: String? = nil,
                maxAge: Int? = nil, secure: Bool = false, httpOnly: Bool = true, sameSite: SameSite? = .lax) {
        self.name = name
        self.value = value
        self.path = path
        self.domain = domain
        self.maxAge = maxAge
        self.secure = secure
        self.httpOnly = httpOnly
        self.sameSite = sameSite
    }

    /// The header value. Throws when the name is not a token or the value
    /// holds characters a cookie value may not (RFC 6265 cookie-octets).
    public func headerValue() throws -> String {
        guard !name.isEmpty, name.utf8.allSatisfy(ResponseHead.isTokenByte) else {
            throw SWGIError(.invalidHeader, "invalid cookie name \(ResponseHead.quoted(name))")
        }
        guard value.utf8.allSatisfy(Self.isCookieOctet) else {
            throw SWGIError(.invalidHeader, "invalid cookie value for \(name): encode it first")
        }
        var out = name + "=" + value
        if let path { out += "; Path=" + path }
        if let domain { out += "; Domain=" + domain }
        if let maxAge { out += "; Max-Age=\(maxAge)" }
        if secure || sameSite == SameSite.none { out += "; Secure" }
        if httpOnly { out += "; HttpOnly" }
        if let sameSite { out += "; SameSite=" + sameSite.rawValue }
        return out
    }

    static func isCookieOctet(_ c: UInt8) -> Bool {
        c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) || (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
