internal import _Concurrency
/// Log levels, with syslog's numbers (which are also Apache's).
public enum LogLevel: Int, Sendable, Comparable {
    case error = 3, warning = 4, notice = 5, info = 6, debug = 7

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Where a server puts a response: the I/O half of a server, which
/// ``Gateway`` drives. The Apache bridge, the test client and the standalone
/// server each implement it.
public protocol ResponseTransport: AnyObject {
    /// Sends (or queues) the status line and headers. Called once, before any body byte.
    func sendHead(_ head: ResponseHead) throws
    /// Sends body bytes, valid only during the call. `flush` asks for them to
    /// be on the wire before returning. Throws an ``SWGIError`` with code
    /// `.clientDisconnected` when the client is gone.
    func sendBody(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws
    /// Sends a file region itself, if it can; returns false to have the body
    /// iterated instead. The default cannot.
    func sendFile(_ region: FileRegion) throws -> Bool

    /// True for a server that queues what it is given instead of waiting
    /// for the client (an event loop): the async gateway then awaits
    /// ``waitWritable()`` after each chunk, so that a fast body does not
    /// pile up in memory. False (the default): sends wait themselves.
    var queuesOutput: Bool { get }

    /// Returns when the server wants more output (what it has queued is
    /// under its limit, or the client is gone: the next send says so).
    /// Only called when ``queuesOutput``.
    func waitWritable() async throws
}

extension ResponseTransport {
    public func sendFile(_ region: FileRegion) throws -> Bool { false }
    public var queuesOutput: Bool { false }
    public func waitWritable() async throws {}
}

/// How serving one request ended.
public enum GatewayOutcome: Equatable, Sendable {
    /// The whole response was handed to the transport.
    case completed
    /// The client went away; the application was stopped and closed.
    case clientDisconnected
    /// The application (or its response) failed; the cause is logged. If
    /// `headersSent` is false the server answers `status`, else it must cut
    /// the connection so the client can tell the response is incomplete.
    case failed(status: Int, headersSent: Bool)
}

/// Runs an application for one request, the way PEP 3333 asks a server to
/// (wsgiref's `BaseHandler.run`): call the application, send the head with
/// the first non-empty chunk (or at the end), send each chunk before asking
/// for the next, enforce `Content-Length`, turn failures into a 500 if
/// nothing was sent yet, and call the body's `close()` exactly once.
public enum Gateway {
    /// - Parameters:
    ///   - name: names the application in log lines (its file, for mod_swgi);
    ///     evaluated only when a line is logged.
    ///   - log: receives the lines that explain failures.
    public static func run<A: Application, T: ResponseTransport>(
        _ app: A, environ: Environ, transport: T, name: @escaping @autoclosure () -> String,
        log: @escaping (LogLevel, String) -> Void
    ) -> GatewayOutcome {
        run(app, environ: environ, transport: transport, reporter: ClosureReporter(name: name, log: log))
    }

    /// The same, with the log and the application's name from one object
    /// the server already has (the bridge's request: no closures to make
    /// per request).
    package static func run<A: Application, T: ResponseTransport>(
        _ app: A, environ: Environ, transport: T, reporter: any GatewayReporter
    ) -> GatewayOutcome {
        let response = Response(transport: transport, reporter: reporter, environ: environ)
        let outcome: GatewayOutcome
        // (No `Body?` kept for the close: an optional of a multi-field
        // struct is destroyed through the runtime's generic witnesses,
        // some 400 instructions a request.)
        do {
            let body = try app(environ, response.startResponse)
            do {
                try response.drain(body)
                try response.finish()
                outcome = .completed
            } catch {
                outcome = response.failure(error)
            }
            body.close()
        } catch {
            outcome = response.failure(error)
        }
        response.end()
        return outcome
    }
}

/// Where the gateway reports why a request failed: the server's log, and
/// the application's name for its lines (asked only when a line is logged).
package protocol GatewayReporter: AnyObject {
    func log(_ level: LogLevel, _ message: String)
    var applicationName: String { get }
}

/// A reporter made of the public `run`'s closures.
final class ClosureReporter: GatewayReporter {
    let name: () -> String
    let sink: (LogLevel, String) -> Void

    init(name: @escaping () -> String, log: @escaping (LogLevel, String) -> Void) {
        self.name = name
        self.sink = log
    }

    func log(_ level: LogLevel, _ message: String) { sink(level, message) }
    var applicationName: String { name() }
}

/// The state of one response: what was started, what was sent. It is
/// also what the writers `startResponse` returns write to.
final class Response: WriterSink {
    let transport: any ResponseTransport
    let reporter: any GatewayReporter
    var name: String { reporter.applicationName }
    /// The request's environ: whether it is a HEAD request is asked only
    /// when a body falls short of its length.
    let environ: Environ
    /// What startResponse set, until it is sent (then nil: `headSent`).
    var head: ResponseHead?
    /// What each chunk is checked against, kept apart from `head` so that
    /// the checks do not copy it (a copy retains its two buffers).
    var contentLength: Int?
    var allowsBody = true
    var headSent = false
    /// Whether startResponse succeeded (the head is set, or already sent).
    var started: Bool {
        if headSent { return true }
        if case .none = head { return false }
        return true
    }
    var sent = 0
    var knownLength: Int?
    var clientGone = false
    var ended = false

    init(transport: any ResponseTransport, reporter: any GatewayReporter, environ: Environ) {
        self.transport = transport
        self.reporter = reporter
        self.environ = environ
        super.init()
    }

    func log(_ level: LogLevel, _ message: String) {
        reporter.log(level, message)
    }

    /// The `startResponse` the application is called with.
    var startResponse: StartResponse {
        StartResponse { status, headers, excInfo in try self.start(status, headers, excInfo) }
    }

    /// The exchange is over (the body closed): no more writes; `swgi.errors` flushed.
    func end() {
        ended = true
        environ.flushErrors()
    }

    func start(_ status: String, _ headers: [(String, String)], _ excInfo: (any Error)?) throws -> Writer {
        if started {
            guard let excInfo else {
                throw SWGIError(.startResponseTwice, "startResponse was called a second time without excInfo")
            }
            if headSent { throw excInfo }
        }
        let head = try ResponseHead(status: status, headers: headers)
        contentLength = head.contentLength
        allowsBody = head.allowsBody
        self.head = head
        executor = RequestExecutor.current
        return Writer(self)
    }

    /// A writer's chunk: sent at once.
    override func write(_ chunk: Chunk) throws {
        _ = try write(chunk, flush: true)
    }

    /// After a writer's awaited chunk: room on a transport that queues.
    override func paced() async throws {
        try await awaitRoom()
    }

    /// Sends every chunk of `body`, each before the next is asked for.
    func drain(_ body: Body) throws {
        guard let streaming = try prepare(body) else { return }
        var chunks = body.makeIterator()
        while let chunk = try chunks.next() {
            guard try write(chunk, flush: streaming) else { break }
        }
    }

    /// Sends a file body as a file when it can. Returns `nil` when nothing
    /// is left to send, else whether the chunks stream (ready chunks have a
    /// known length, sent as `Content-Length`). (A `Bool?`, not an optional
    /// iterator: an optional of a multi-field struct is destroyed through
    /// the runtime's generic witnesses, some 200 instructions.)
    func prepare(_ body: Body) throws -> Bool? {
        if let region = body.fileRegion, try sendFile(region) { return nil }
        if let ready = body.readyChunks {
            knownLength = ready.reduce(0) { $0 + $1.count }
            return false
        }
        return true
    }

    /// Sends one chunk. Returns false when the declared `Content-Length` is
    /// exhausted and the rest of the body should not be asked for.
    func write(_ chunk: Chunk, flush: Bool) throws -> Bool {
        if ended {
            throw SWGIError(.responseNotStarted, "write called after the response ended")
        }
        guard started else {
            throw SWGIError(.responseNotStarted, "the application produced body bytes before calling startResponse")
        }
        if clientGone {
            throw SWGIError(.clientDisconnected, "the client has disconnected")
        }
        if chunk.isEmpty { return true }
        try sendHeadIfNeeded()
        var count = chunk.count
        if let limit = contentLength, sent + count > limit {
            count = limit - sent
            log(.error, "SWGI application \(name) returned more bytes than its Content-Length of \(limit); the response was cut at \(limit) bytes")
        }
        if count > 0 {
            try chunk.withUnsafeBytes { raw in
                try send(UnsafeRawBufferPointer(rebasing: raw[0..<count]), flush: flush)
            }
            sent += count
        }
        return count == chunk.count
    }

    /// Hands a file region to the transport, when it takes files and the
    /// region fits the declared length. True when the region was sent.
    func sendFile(_ region: FileRegion) throws -> Bool {
        guard started else {
            throw SWGIError(.responseNotStarted, "the application returned a file body before calling startResponse")
        }
        if clientGone { throw SWGIError(.clientDisconnected, "the client has disconnected") }
        if let limit = contentLength, limit != region.length { return false }
        knownLength = region.length
        try sendHeadIfNeeded()
        if region.length == 0 { return true }
        let sent: Bool
        do {
            sent = try transport.sendFile(region)
        } catch {
            clientGone = true
            throw error
        }
        if sent { self.sent += region.length }
        return sent
    }

    /// Ends the response: sends the head if the body was empty, checks the length.
    func finish() throws {
        guard started else {
            throw SWGIError(.responseNotStarted, "the application returned without calling startResponse")
        }
        try sendHeadIfNeeded()
        if let limit = contentLength, sent < limit, allowsBody, environ.requestMethod != "HEAD" {
            throw SWGIError(.contentLengthMismatch, "the application returned \(sent) bytes, fewer than its Content-Length of \(limit)")
        }
    }

    func failure(_ error: any Error) -> GatewayOutcome {
        let swgiError = error as? SWGIError
        if clientGone || swgiError?.code == .clientDisconnected {
            log(.info, "SWGI application \(name): the client disconnected before the response was complete")
            return .clientDisconnected
        }
        let cause = swgiError?.message ?? String(reflecting: error)
        if error is CancellationError {
            // The server cancelled the request's task (a timeout) and says why.
            log(.info, "SWGI application \(name) stopped: its task was cancelled")
        } else if swgiError?.code == .inputFailed {
            log(.info, "SWGI application \(name) stopped: \(cause)")
        } else if headSent {
            log(.error, "SWGI application \(name) failed after the response started (connection cut): \(cause)")
        } else {
            log(.error, "SWGI application \(name) failed: \(cause)")
        }
        return .failed(status: 500, headersSent: headSent)
    }

    private func sendHeadIfNeeded() throws {
        guard !headSent, var head = head.take() else { return }
        if head.contentLength == nil, let knownLength, head.allowsBody {
            head.headers.append(("Content-Length", String(knownLength)))
        }
        headSent = true
        do {
            try transport.sendHead(head)
        } catch {
            clientGone = true
            throw error
        }
    }

    private func send(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws {
        do {
            try transport.sendBody(bytes, flush: flush)
        } catch {
            clientGone = true
            throw error
        }
    }
}
