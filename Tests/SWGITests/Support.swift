@testable import SWGI

/// A transport that records what a server would send, and can play a client
/// that disconnects after some writes.
final class RecordingTransport: ResponseTransport, @unchecked Sendable {
    var head: ResponseHead?
    var events: [String] = []
    var body: [UInt8] = []
    var flushes: [Bool] = []
    var failAfterWrites: Int?

    func sendHead(_ head: ResponseHead) throws {
        self.head = head
        events.append("head \(head.status)")
    }

    func sendBody(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws {
        if let limit = failAfterWrites, flushes.count >= limit {
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
