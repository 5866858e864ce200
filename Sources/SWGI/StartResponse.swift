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
    /// One reference: a discarded writer costs one release (a struct of
    /// closures and an optional was destroyed through the runtime's generic
    /// witnesses, ~90 instructions a request).
    private let sink: WriterSink

    public init(_ function: @escaping (Chunk) throws -> Void) {
        sink = ClosureSink(function)
    }

    /// A writer over the gateway's response.
    init(_ sink: WriterSink) {
        self.sink = sink
    }

    public func callAsFunction(_ chunk: Chunk) throws {
        try sink.write(chunk)
    }

    /// The same write, awaited by an async application: made on the
    /// request's thread (see ``RequestExecutor``); throws
    /// `CancellationError` once the request's task is cancelled. On a
    /// server that queues output (an event loop) it returns once the server
    /// wants more.
    public func callAsFunction(_ chunk: Chunk) async throws {
        let sink = sink
        try await RequestExecutor.onRequestThread(sink.executor) { try sink.write(chunk) }
        try await sink.paced()
    }
}

/// Where a ``Writer``'s chunks go: the gateway's response, or a closure.
class WriterSink {
    /// Where awaited writes are made: the request's executor when the writer
    /// was made on its thread (as `startResponse` is called).
    @exclusivity(unchecked) var executor: RequestExecutor?

    init() {}

    func write(_ chunk: Chunk) throws {}

    /// Awaited after an awaited write: returns once the server wants more.
    func paced() async throws {}
}

/// The sink of a writer made from a closure (middleware's own writers).
private final class ClosureSink: WriterSink {
    let function: (Chunk) throws -> Void

    init(_ function: @escaping (Chunk) throws -> Void) {
        self.function = function
        super.init()
        executor = RequestExecutor.current
    }

    override func write(_ chunk: Chunk) throws {
        try function(chunk)
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
        // Borrowed in place: no copy (and retain) of each pair's strings.
        try headers.withUnsafeBufferPointer { pairs in
            for i in pairs.indices {
                guard let n = try Self.validateHeader(name: pairs[i].0, value: pairs[i].1) else { continue }
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
        try withBytes(of: status) { u in
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

    /// Hop-by-hop headers, and Status, which an application may not set
    /// (lower case).
    static let forbidden: [StaticString] = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "status",
    ]

    /// Checks one header; returns its value as a number when it is
    /// `Content-Length`, else nil. One pass over each string's bytes, in place.
    static func validateHeader(name: String, value: String) throws -> Int? {
        try withBytes(of: name) { n in
            try withBytes(of: value) { v in try validateHeader(name: n, value: v, name, value) }
        }
    }

    private static func validateHeader(name n: UnsafeBufferPointer<UInt8>, value v: UnsafeBufferPointer<UInt8>,
                                       _ name: String, _ value: String) throws -> Int? {
        var token = !n.isEmpty
        for c in n where !isTokenByte(c) {
            token = false
            break
        }
        guard token else {
            throw SWGIError(.invalidHeader, "invalid header name \(quoted(name))")
        }
        for c in v where (c < 0x20 && c != 0x09) || c == 0x7F {
            throw SWGIError(.invalidHeader, "invalid value for header \(quoted(name)): control character \(hex(c)) (CR, LF and other control characters are not allowed)")
        }
        // Only names of a forbidden name's length (or Content-Length's) are compared.
        switch n.count {
        case 14:
            guard equalsLowercase(n, "content-length") else { return nil }
            var number = 0
            guard !v.isEmpty, v.count <= 18 else { throw invalidLength(value) }
            for c in v {
                guard c >= 0x30 && c <= 0x39 else { throw invalidLength(value) }
                number = number * 10 + Int(c - 0x30)
            }
            return number
        case 2, 6, 7, 8, 10, 17, 18, 19:
            for other in forbidden where equalsLowercase(n, other) {
                if other.utf8CodeUnitCount == 6 {  // status
                    throw SWGIError(.invalidHeader, "header \"Status\" is not allowed: pass the status to startResponse")
                }
                throw SWGIError(.invalidHeader, "hop-by-hop header \(quoted(name)) is the server's to set, not the application's")
            }
            return nil
        default:
            return nil
        }
    }

    private static func invalidLength(_ value: String) -> SWGIError {
        SWGIError(.invalidHeader, "invalid Content-Length value \(quoted(value))")
    }

    /// The UTF-8 of `s`, in place where the string has contiguous storage.
    @inline(__always)
    static func withBytes<R>(of s: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R {
        if let result = try s.utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = s  // a string without contiguous UTF-8 (bridged)
        return try copy.withUTF8(body)
    }

    /// Whether the token `name` is `lower` (ASCII lower case letters and
    /// `-`) ignoring case. Setting bit 5 maps only `A-Z` onto `a-z` among
    /// token characters, and leaves `-` as it is.
    @inline(__always)
    static func equalsLowercase(_ name: UnsafeBufferPointer<UInt8>, _ lower: StaticString) -> Bool {
        guard name.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        for i in 0..<name.count where name[i] | 0x20 != l[i] { return false }
        return true
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
