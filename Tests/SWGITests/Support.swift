@testable import SWGI
import Synchronization

/// A transport that records what a server would send, and can play a client
/// that disconnects after some writes.
final class RecordingTransport: ResponseTransport, @unchecked Sendable {
    var head: ResponseHead?
    var events: [String] = []
    var body: [UInt8] = []
    var flushes: [Bool] = []
    var failAfterWrites: Int?
    /// Called when a write fails because the client is gone (a server
    /// cancels the request's task then).
    var onClientGone: (() -> Void)?

    func sendHead(_ head: ResponseHead) throws {
        self.head = head
        events.append("head \(head.status)")
    }

    func sendBody(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws {
        if let limit = failAfterWrites, flushes.count >= limit {
            onClientGone?()
            throw SWGIError(.clientDisconnected, "gone")
        }
        body.append(contentsOf: bytes)
        flushes.append(flush)
        events.append("body \(bytes.count)")
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? { head?.value(of: name) }
}

/// Runs `app` through the Gateway and returns the outcome, transport and log.
func serve(_ app: some Application, method: String = "GET", variables: [String: String] = [:],
           transport: RecordingTransport = RecordingTransport()) -> (GatewayOutcome, RecordingTransport, [String]) {
    var logged: [String] = []
    var vars = variables
    vars["REQUEST_METHOD"] = method
    let environ = Environ(variables: vars, errors: ErrorStream { logged.append("errors: " + $0) })
    let outcome = Gateway.run(app, environ: environ, transport: transport, name: "test") { _, line in
        logged.append(line)
    }
    return (outcome, transport, logged)
}

/// Counts calls of a body's close().
final class CloseCounter: @unchecked Sendable {
    var count = 0
    func close() { count += 1 }
}

/// Runs an async `app` through the async Gateway as mod_swgi does: a task on
/// a RequestExecutor of this thread. `timeout` as Apache's Timeout; a nil
/// outcome means it passed.
func serveAsync(_ app: some AsyncApplication, method: String = "GET", variables: [String: String] = [:],
                input: [UInt8] = [], transport: RecordingTransport = RecordingTransport(),
                timeout: Duration? = nil, timedOut: UnsafeMutablePointer<Bool>? = nil)
    -> (GatewayOutcome?, RecordingTransport, [String]) {
    let log = Lines()
    var vars = variables
    vars["REQUEST_METHOD"] = method
    if !input.isEmpty { vars["CONTENT_LENGTH"] = String(input.count) }
    let environ = Environ(variables: vars, input: RequestInput(bytes: input),
                          errors: ErrorStream { log.append("errors: " + $0) })
    let executor = RequestExecutor()
    transport.onClientGone = { executor.cancel() }
    let shared = UncheckedBox((app, environ, transport))
    let outcome = executor.run(timeout: timeout) {
        let (app, environ, transport) = shared.value
        return await Gateway.run(async: app, environ: environ, transport: transport, name: "test") { _, line in
            log.append(line)
        }
    }
    executor.shutdown()
    timedOut?.pointee = executor.timedOut
    return (outcome, transport, log.lines)
}

final class Lines: Sendable {
    private let stored = Mutex<[String]>([])
    var lines: [String] { stored.withLock { $0 } }
    func append(_ line: String) { stored.withLock { $0.append(line) } }
}

