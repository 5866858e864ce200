internal import _Concurrency
/// The `start_response` of PEP 3333: sets the response's status and headers.
///
/// ```swift
/// try startResponse("404 Not Found", [("Content-Type", "text/plain")])
/// ```
///
/// The server's implementation validates (see ``ResponseHead``) and sends
/// nothing yet: the head leaves with the first non-empty chunk or when the
/// body ends. A second call throws, unless it carries the error that caused
/// it (`excInfo`) and nothing has been sent yet; then it replaces the first.
/// If the head was already sent, a call with `excInfo` rethrows that error.
///
/// It returns a ``Writer`` for applications that push bytes instead of
/// returning them.
///
/// Middleware builds its own with ``init(_:)`` to see or change what the
/// inner application starts.
public struct StartResponse {
    public typealias Function = (_ status: String, _ headers: [(String, String)], _ excInfo: (any Error)?) throws -> Writer

    private let function: Function

    public init(_ function: @escaping Function) {
        self.function = function
    }

    @discardableResult
    public func callAsFunction(_ status: String, _ headers: [(String, String)], excInfo: (any Error)? = nil) throws -> Writer {
        try function(status, headers, excInfo)
    }
}

/// The `write` callable that ``StartResponse`` returns: each call sends its
/// bytes to the client before it returns. Throws when the client is gone.
public struct Writer {
    private let function: (Chunk) throws -> Void
    /// Where awaited writes are made: the request's executor when the writer
    /// was made on its thread (as `startResponse` is called).
    private let executor: RequestExecutor?
    /// Awaited after an awaited write, when the server queues output.
    private let paced: (() async throws -> Void)?

    public init(_ function: @escaping (Chunk) throws -> Void) {
        self.init(function, paced: nil)
    }

    init(_ function: @escaping (Chunk) throws -> Void, paced: (() async throws -> Void)?) {
        self.function = function
        self.paced = paced
        executor = RequestExecutor.current
    }

    public func callAsFunction(_ chunk: Chunk) throws {
        try function(chunk)
    }

    /// The same write, awaited by an async application: made on the
    /// request's thread (see ``RequestExecutor``); throws
    /// `CancellationError` once the request's task is cancelled. On a
    /// server that queues output (an event loop) it returns once the server
    /// wants more.
    public func callAsFunction(_ chunk: Chunk) async throws {
        try await RequestExecutor.onRequestThread(executor) { try function(chunk) }
        try await paced?()
    }
}

/// A validated status and header list.
///
/// The rules (PEP 3333's, which keep responses from being split or forged):
/// - status: three digits (100-999), one space, a reason phrase of visible
///   characters and spaces;
/// - header names: HTTP tokens, not `Status`, not hop-by-hop (`Connection`,
///   `Keep-Alive`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`,
///   `Trailer`, `Trailers`, `Transfer-Encoding`, `Upgrade`);
/// - header values: no CR, LF, NUL or other control character except tab;
/// - `Content-Length`: digits only.
public struct ResponseHead: Sendable {
    public let status: Int
    public let statusLine: String
    public var headers: [(String, String)]
    /// The declared `Content-Length`, if any.
    public let contentLength: Int?

    public init(status statusLine: String, headers: [(String, String)]) throws {
        status = try Self.parseStatus(statusLine)
        self.statusLine = statusLine
        var length: Int?
        for (name, value) in headers {
            try Self.validateHeader(name: name, value: value)
            if Self.equalsIgnoringCase(name, "content-length") {
                guard !value.isEmpty, value.utf8.count <= 18, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                      let n = Int(value) else {
                    throw SWGIError(.invalidHeader, "invalid Content-Length value \(Self.quoted(value))")
                }
                if let length, length != n {
                    throw SWGIError(.invalidHeader, "conflicting Content-Length headers")
                }
                length = n
            }
        }
        self.headers = headers
        self.contentLength = length
    }

    /// Whether a response with this status may carry a body.
    public var allowsBody: Bool {
        !(status < 200 || status == 204 || status == 304)
    }

    /// The first value of a header (case-insensitive name).
    public func value(of name: String) -> String? {
        headers.first(where: { Self.equalsIgnoringCase($0.0, name) })?.1
    }

    static func parseStatus(_ status: String) throws -> Int {
        var status = status
        return try status.withUTF8 { u in
            guard u.count >= 5, u[3] == UInt8(ascii: " "), isDigit(u[0]), isDigit(u[1]), isDigit(u[2]),
                  u[0] != 0x30 else {
                throw SWGIError(.invalidStatus, "invalid status \(quoted(String(decoding: u, as: UTF8.self))): expected a three-digit code, a space and a reason, like \"200 OK\"")
            }
            for i in 4..<u.count where u[i] < 0x20 || u[i] == 0x7F {
                throw SWGIError(.invalidStatus, "invalid status \(quoted(String(decoding: u, as: UTF8.self))): control character in the reason")
            }
            return Int(u[0] - 0x30) * 100 + Int(u[1] - 0x30) * 10 + Int(u[2] - 0x30)
        }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// Hop-by-hop headers, and Status, which an application may not set.
    static let forbidden = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "status",
    ]

    static func validateHeader(name: String, value: String) throws {
        guard !name.isEmpty, allBytes(of: name, satisfy: isTokenByte) else {
            throw SWGIError(.invalidHeader, "invalid header name \(quoted(name))")
        }
        // Only names of a forbidden name's length are compared.
        switch name.utf8.count {
        case 2, 6, 7, 8, 10, 17, 18, 19:
            for other in forbidden where equalsIgnoringCase(name, other) {
                if other == "status" {
                    throw SWGIError(.invalidHeader, "header \"Status\" is not allowed: pass the status to startResponse")
                }
                throw SWGIError(.invalidHeader, "hop-by-hop header \(quoted(name)) is the server's to set, not the application's")
            }
        default:
            break
        }
        if !allBytes(of: value, satisfy: { c in (c >= 0x20 || c == 0x09) && c != 0x7F }) {
            let c = value.utf8.first { c in (c < 0x20 && c != 0x09) || c == 0x7F }!
            throw SWGIError(.invalidHeader, "invalid value for header \(quoted(name)): control character \(hex(c)) (CR, LF and other control characters are not allowed)")
        }
    }

    /// Whether every UTF-8 byte of `s` satisfies `test` (a tight loop over
    /// the string's own storage where it has one).
    @inline(__always)
    static func allBytes(of s: String, satisfy test: (UInt8) -> Bool) -> Bool {
        if let result = s.utf8.withContiguousStorageIfAvailable({ bytes -> Bool in
            for c in bytes where !test(c) { return false }
            return true
        }) {
            return result
        }
        return s.utf8.allSatisfy(test)
    }

    /// Whether `c` is a token character of RFC 9110: letters, digits and
    /// ``!#$%&'*+-.^_`|~``.
    @inline(__always)
    static func isTokenByte(_ c: UInt8) -> Bool {
        // Bit n of the masks: character n (low: 0-63, high: 64-127).
        let low: UInt64 = 0x03FF_6CFA_0000_0000
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE
        if c < 64 { return low & (1 << UInt64(c)) != 0 }
        if c < 128 { return high & (1 << UInt64(c - 64)) != 0 }
        return false
    }

    /// ASCII case-insensitive equality.
    static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        if let result = x.withContiguousStorageIfAvailable({ p in
            y.withContiguousStorageIfAvailable { q in equalsIgnoringCase(p, q) }
        }), let result {
            return result
        }
        let p = Array(x), q = Array(y)  // strings without contiguous UTF-8
        return p.withUnsafeBufferPointer { p in q.withUnsafeBufferPointer { q in equalsIgnoringCase(p, q) } }
    }

    private static func equalsIgnoringCase(_ p: UnsafeBufferPointer<UInt8>, _ q: UnsafeBufferPointer<UInt8>) -> Bool {
        guard p.count == q.count else { return false }
        for i in 0..<p.count {
            let c = p[i], d = q[i]
            if c == d { continue }
            let lower = c | 0x20
            guard lower == d | 0x20, lower >= 0x61, lower <= 0x7A else { return false }
        }
        return true
    }

    /// A string in quotes with control characters escaped, safe for a log line.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\x" + hex(UInt8(scalar.value)).dropFirst(2)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func hex(_ c: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "0x" + String(digits[Int(c >> 4)]) + String(digits[Int(c & 15)])
    }
}
