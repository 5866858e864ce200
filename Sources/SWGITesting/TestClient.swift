public import SWGI
internal import SWGIStatic

/// Calls an SWGI application with no server: builds the environ a server
/// would, runs the application through the same ``Gateway`` the servers use,
/// and returns what a client would receive. Every call goes through the
/// ``Validator`` unless `validate` is false; its reports are in
/// ``TestResponse/violations``. Cookies the application sets are kept and
/// sent back, like a browser.
///
/// ```swift
/// let client = TestClient(Greetings())
/// let response = client.get("/?name=John")
/// #expect(response.status == 200)
/// #expect(response.text == "My name is John")
/// #expect(response.violations.isEmpty)
/// ```
public final class TestClient<A: AsyncApplication> {
    public let app: A
    public var validate: Bool
    /// Where the application is mounted: requests below it get it as `SCRIPT_NAME`.
    public var scriptName: String
    /// Variables every request's environ gets (as `SetEnv` would).
    public var environ: [String: String]
    /// Cookies kept from `Set-Cookie` headers, sent with each request.
    public var cookies: [String: String] = [:]

    public init(_ app: A, validate: Bool = true, scriptName: String = "", environ: [String: String] = [:]) {
        self.app = app
        self.validate = validate
        self.scriptName = scriptName
        self.environ = environ
    }

    public func get(_ target: String, headers: [(String, String)] = []) -> TestResponse {
        request("GET", target, headers: headers)
    }

    public func head(_ target: String, headers: [(String, String)] = []) -> TestResponse {
        request("HEAD", target, headers: headers)
    }

    public func delete(_ target: String, headers: [(String, String)] = []) -> TestResponse {
        request("DELETE", target, headers: headers)
    }

    public func post(_ target: String, body: [UInt8], headers: [(String, String)] = []) -> TestResponse {
        request("POST", target, headers: headers, body: body)
    }

    public func put(_ target: String, body: [UInt8], headers: [(String, String)] = []) -> TestResponse {
        request("PUT", target, headers: headers, body: body)
    }

    /// POSTs `form` as `application/x-www-form-urlencoded`.
    public func post(_ target: String, form: [(String, String)], headers: [(String, String)] = []) -> TestResponse {
        let encoded = form.map { URLEncoding.escapeComponent($0.0) + "=" + URLEncoding.escapeComponent($0.1) }
            .joined(separator: "&")
        return request("POST", target,
                       headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers,
                       body: Array(encoded.utf8))
    }

    /// Any request. `target` is a path with an optional `?query`, as on the
    /// request line. A body gets a `Content-Length`.
    public func request(_ method: String, _ target: String, headers: [(String, String)] = [],
                        body: [UInt8]? = nil) -> TestResponse {
        let env = makeEnviron(method, target, headers: headers, body: body)
        let transport = MemoryTransport()
        let violations = LineLog()
        var environ = env
        let log = LineLog()
        environ.errors = ErrorStream { log.append($0) }
        let onViolation: @Sendable (String) -> Void = { violations.append($0) }
        let outcome: GatewayOutcome
        if let sync = app as? any Application {
            // A sync application runs as a server runs it, on this thread.
            outcome = Self.runSync(sync, validate ? onViolation : nil, environ, transport, log)
        } else {
            // An async one as mod_swgi runs it: a task whose code runs on this thread.
            let executor = RequestExecutor()
            // The calling thread waits for the task and touches nothing meanwhile.
            let shared = UncheckedBox((app, environ, transport, log))
            outcome = executor.run { [validate] () async -> GatewayOutcome in
                let (app, environ, transport, log) = shared.value
                let record: (LogLevel, String) -> Void = { _, line in log.append(line) }
                return validate
                    ? await Gateway.run(async: Validator(app, onViolation: onViolation), environ: environ,
                                        transport: transport, name: "test", log: record)
                    : await Gateway.run(async: app, environ: environ, transport: transport, name: "test", log: record)
            }!
            executor.shutdown()
        }
        let response = TestResponse(outcome: outcome, head: transport.head, body: transport.body,
                                    errors: log.lines, violations: violations.lines)
        remember(response.headers.filter { $0.0.lowercased() == "set-cookie" }.map(\.1))
        return response
    }

    private static func runSync<S: Application>(_ app: S, _ onViolation: (@Sendable (String) -> Void)?,
                                                _ environ: Environ, _ transport: MemoryTransport,
                                                _ log: LineLog) -> GatewayOutcome {
        let record: (LogLevel, String) -> Void = { _, line in log.append(line) }
        if let onViolation {
            return Gateway.run(Validator(app, onViolation: onViolation), environ: environ, transport: transport,
                               name: "test", log: record)
        }
        return Gateway.run(app, environ: environ, transport: transport, name: "test", log: record)
    }

    /// The environ a server would build for the request.
    public func makeEnviron(_ method: String, _ target: String, headers: [(String, String)] = [],
                            body: [UInt8]? = nil) -> Environ {
        let (rawPath, query) = split(target)
        var path = Self.percentDecode(rawPath)
        var script = scriptName
        if !script.isEmpty, path == script || path.hasPrefix(script + "/") {
            path = String(path.dropFirst(script.utf8.count))
        } else {
            script = ""
        }
        var vars = environ
        vars["REQUEST_METHOD"] = method
        vars["SCRIPT_NAME"] = script
        vars["PATH_INFO"] = path
        vars["QUERY_STRING"] = query
        vars["REQUEST_URI"] = target
        vars["SERVER_NAME"] = vars["SERVER_NAME"] ?? "localhost"
        vars["SERVER_PORT"] = vars["SERVER_PORT"] ?? "80"
        vars["SERVER_PROTOCOL"] = "HTTP/1.1"
        vars["REMOTE_ADDR"] = vars["REMOTE_ADDR"] ?? "127.0.0.1"
        vars["HTTP_HOST"] = "localhost"
        vars["GATEWAY_INTERFACE"] = "CGI/1.1"
        var seen: Set<String> = []
        for (name, value) in headers {
            let key: String
            switch name.lowercased() {
            case "content-type": key = "CONTENT_TYPE"
            case "content-length": key = "CONTENT_LENGTH"
            default: key = "HTTP_" + name.uppercased().map { $0 == "-" ? "_" : $0 }.map(String.init).joined()
            }
            if let old = vars[key], key.hasPrefix("HTTP_"), seen.contains(key) {
                vars[key] = old + ", " + value  // repeated header lines, joined as servers do
            } else {
                vars[key] = value
            }
            seen.insert(key)
        }
        if vars["HTTP_COOKIE"] == nil, !cookies.isEmpty {
            vars["HTTP_COOKIE"] = cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        }
        if let body {
            vars["CONTENT_LENGTH"] = vars["CONTENT_LENGTH"] ?? String(body.count)
        }
        return Environ(variables: vars, input: RequestInput(bytes: body ?? []),
                       urlScheme: Environ.scheme(https: vars["HTTPS"]), fileWrapper: posixFileWrapper)
    }

    private func split(_ target: String) -> (String, String) {
        if let q = target.firstIndex(of: "?") {
            return (String(target[..<q]), String(target[target.index(after: q)...]))
        }
        return (target, "")
    }

    private func remember(_ setCookies: [String]) {
        for header in setCookies {
            let parsed = HeaderParameters(header)
            guard let eq = parsed.value.firstIndex(of: "=") else { continue }
            let name = String(parsed.value[..<eq])
            let value = String(parsed.value[parsed.value.index(after: eq)...])
            if parsed.parameters["max-age"].flatMap({ Int($0) }).map({ $0 <= 0 }) == true {
                cookies[name] = nil
            } else {
                cookies[name] = value
            }
        }
    }

    /// %XX decoding of a path (no `+` rule), as a server decodes `PATH_INFO`.
    static func percentDecode(_ s: String) -> String {
        QueryParameters.decode(s.utf8, plusAsSpace: false)
    }
}

/// What the client received.
public struct TestResponse {
    public let outcome: GatewayOutcome
    /// The status code; 500 when the application failed before sending anything.
    public let status: Int
    public let statusLine: String
    public let headers: [(String, String)]
    public let body: [UInt8]
    /// Lines the application wrote to `swgi.errors`, and the gateway's log lines.
    public let errors: [String]
    /// What the ``Validator`` found wrong.
    public let violations: [String]

    init(outcome: GatewayOutcome, head: ResponseHead?, body: [UInt8], errors: [String], violations: [String]) {
        self.outcome = outcome
        if case .failed(let status, false) = outcome {
            self.status = status
            statusLine = HTTPStatus.line(status)
            headers = []
            self.body = []
        } else {
            status = head?.status ?? 0
            statusLine = head?.statusLine ?? ""
            headers = head?.headers ?? []
            self.body = body
        }
        self.errors = errors
        self.violations = violations
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The first value of a header (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first(where: { $0.0.lowercased() == name.lowercased() })?.1
    }

    /// Every value of a header, in order.
    public func headers(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    /// Whether the response was cut (the application failed after sending).
    public var wasCut: Bool {
        if case .failed(_, true) = outcome { return true }
        return false
    }
}

final class MemoryTransport: ResponseTransport {
    var head: ResponseHead?
    var body: [UInt8] = []

    func sendHead(_ head: ResponseHead) throws { self.head = head }

    func sendBody(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws {
        body.append(contentsOf: bytes)
    }
}

/// Lines (log lines, the validator's reports) gathered during one request,
/// in order, on the thread that runs it.
final class LineLog: @unchecked Sendable {
    var lines: [String] = []
    func append(_ line: String) { lines.append(line) }
}
