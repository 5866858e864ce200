/// Checks both sides of the SWGI contract around an application, as
/// wsgiref's `validate` does for WSGI, and reports every violation (to
/// `swgi.errors` as "SWGI validator: ...", or to `onViolation`). It changes
/// nothing else: a valid exchange passes through untouched.
///
/// The server's side (the environ):
/// - `REQUEST_METHOD`, `SERVER_NAME`, `SERVER_PORT`, `SERVER_PROTOCOL` present and non-empty;
///   `REQUEST_METHOD` a token; `SERVER_PORT` and `CONTENT_LENGTH` (if present) digits;
/// - `SCRIPT_NAME` and `PATH_INFO` empty or starting with `/`, `SCRIPT_NAME` never `/`;
/// - no `HTTP_CONTENT_TYPE` or `HTTP_CONTENT_LENGTH`;
/// - `swgi.version` 1.0 and `swgi.url_scheme` `http` or `https`;
/// - the server calls the body's `close()` exactly once and iterates no more after it.
///
/// The application's side:
/// - `startResponse` before any body byte, once (again only with `excInfo`);
/// - a valid status and headers (see ``ResponseHead``), `Content-Type` present
///   except for 1xx, 204 and 304, and absent for 204 and 304.
///
/// wsgiref's "the body is never a single string" needs no check here: a
/// ``Body``'s elements are chunks, so the type system already enforces it.
///
/// ```swift
/// let checked = Validator(MyApp())
/// ```
public struct Validator<Wrapped: AsyncApplication>: AsyncApplication {
    public let wrapped: Wrapped
    public let onViolation: (@Sendable (String) -> Void)?

    public init(_ wrapped: Wrapped, onViolation: (@Sendable (String) -> Void)? = nil) {
        self.wrapped = wrapped
        self.onViolation = onViolation
    }

    /// An async application (or a sync one served by an async server).
    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        let check = ValidatorCheck(environ, startResponse, onViolation)
        let body = try await wrapped(environ, check.startResponse)
        let close = check.closer(body.close)
        if let ready = body.readyChunks {
            check.returned(ready)
            return AsyncBody(ready, onClose: close)
        }
        if case .sync(let inner) = body.storage {  // a file body stays one
            var chunks = inner.makeIterator()
            return AsyncBody(Body(forwarding: inner, next: { try check.chunk { try chunks.next() } }, onClose: close))
        }
        var chunks = body.makeAsyncIterator()
        return AsyncBody(next: {
            check.asking()
            return check.produced(try await chunks.next())
        }, onClose: close)
    }

    static func checkEnviron(_ environ: Environ) -> [String] {
        var problems: [String] = []
        for key in ["REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL"] {
            if (environ[key] ?? "").isEmpty { problems.append("environ lacks \(key)") }
        }
        if let method = environ["REQUEST_METHOD"], !method.utf8.allSatisfy(ResponseHead.isTokenByte) {
            problems.append("REQUEST_METHOD \(ResponseHead.quoted(method)) is not a token")
        }
        for key in ["SERVER_PORT", "CONTENT_LENGTH"] {
            if let v = environ[key], !v.isEmpty, !v.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                problems.append("\(key) \(ResponseHead.quoted(v)) is not a number")
            }
        }
        for key in ["SCRIPT_NAME", "PATH_INFO"] {
            if let v = environ[key], !v.isEmpty, v.utf8.first != UInt8(ascii: "/") {
                problems.append("\(key) \(ResponseHead.quoted(v)) must be empty or start with /")
            }
        }
        if environ["SCRIPT_NAME"] == "/" {
            problems.append("SCRIPT_NAME must not be \"/\" (it is empty at the root)")
        }
        for key in ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"] where environ[key] != nil {
            problems.append("environ has \(key): it must be \(key.dropFirst(5))")
        }
        if environ.version != (1, 0) {
            problems.append("swgi.version is \(environ.version), not (1, 0)")
        }
        if environ.urlScheme != "http" && environ.urlScheme != "https" {
            problems.append("swgi.url_scheme \(ResponseHead.quoted(environ.urlScheme)) is not http or https")
        }
        return problems
    }

    static func checkHead(_ status: String, _ headers: [(String, String)]) -> [String] {
        var problems: [String] = []
        let head: ResponseHead
        do {
            head = try ResponseHead(status: status, headers: headers)
        } catch {
            return ["startResponse: \(error)"]
        }
        let hasType = head.value(of: "Content-Type") != nil
        if head.status == 204 || head.status == 304 {
            if hasType { problems.append("Content-Type in a \(head.status) response, which has no content") }
        } else if head.status >= 200 && !hasType {
            problems.append("no Content-Type header in a \(head.status) response")
        }
        return problems
    }
}

extension Validator: Application where Wrapped: Application {
    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let check = ValidatorCheck(environ, startResponse, onViolation)
        let body = try wrapped(environ, check.startResponse)
        let close = check.closer(body.close)
        if let ready = body.readyChunks {
            check.returned(ready)
            return Body(ready, onClose: close)
        }
        var chunks = body.makeIterator()
        return Body(forwarding: body, next: { try check.chunk { try chunks.next() } }, onClose: close)
    }
}

/// One request's checks: the environ when made, then every call the
/// application and the server make through it.
final class ValidatorCheck: @unchecked Sendable {
    let report: (String) -> Void
    let state = ValidatorState()
    private(set) var startResponse: StartResponse!
    private var token: CloseToken?

    init(_ environ: Environ, _ startResponse: StartResponse, _ onViolation: (@Sendable (String) -> Void)?) {
        let errors = environ.errors
        let report: (String) -> Void = { message in
            if let onViolation { onViolation(message) } else { errors.writeLine("SWGI validator: " + message) }
        }
        self.report = report
        for problem in Validator<App>.checkEnviron(environ) { report(problem) }
        let state = self.state
        self.startResponse = StartResponse { status, headers, excInfo in
            if state.started && excInfo == nil {
                report("startResponse called a second time without excInfo")
            }
            for problem in Validator<App>.checkHead(status, headers) { report(problem) }
            let write = try startResponse(status, headers, excInfo: excInfo)
            state.started = true
            return Writer { chunk in
                if state.closed { report("write called after the body was closed") }
                try write(chunk)
            }
        }
    }

    /// The body's close, checked: once, and nothing asked after it.
    func closer(_ close: @escaping () -> Void) -> () -> Void {
        let token = CloseToken(report: report)
        self.token = token
        return { [state, report] in
            if token.closed { report("the server called close() more than once") }
            token.closed = true
            state.closed = true
            close()
        }
    }

    /// A body of ready chunks.
    func returned(_ ready: [Chunk]) {
        if !ready.allSatisfy(\.isEmpty) && !state.started {
            report("the application returned a body without calling startResponse")
        }
    }

    func asking() {
        if token?.closed == true { report("the server asked for a chunk after close()") }
    }

    func produced(_ chunk: Chunk?) -> Chunk? {
        if let chunk, !chunk.isEmpty, !state.started {
            report("the application produced body bytes before calling startResponse")
        }
        return chunk
    }

    /// The next chunk of a sync body, checked.
    func chunk(_ next: () throws -> Chunk?) throws -> Chunk? {
        asking()
        return produced(try next())
    }
}

final class ValidatorState: @unchecked Sendable {
    var started = false
    var closed = false
}

/// Reports a body that the server dropped without calling close().
final class CloseToken {
    var closed = false
    let report: (String) -> Void

    init(report: @escaping (String) -> Void) { self.report = report }

    deinit {
        if !closed { report("the server never called close() on the body") }
    }
}
