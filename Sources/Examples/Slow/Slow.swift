// An async application: ten chunks with a pause between them, each sent
// when it is written (the client sees them one by one). `?count=` and
// `?delay=` (milliseconds) change the shape, within limits. When the client
// leaves, the request's task is cancelled: the pause ends at once and the
// application says so in the error log.
import SWGIBridge

struct Slow: AsyncApplication {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        let query = environ.query
        let count = min(max(Int(query["count"] ?? "") ?? 10, 1), 1000)
        let delay = min(max(Int(query["delay"] ?? "") ?? 100, 0), 60_000)
        try startResponse("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        let errors = environ.errors
        return AsyncBody { write in
            for n in 1...count {
                do {
                    try await write("chunk \(n) of \(count)\n")
                    if n < count { try await Task.sleep(for: .milliseconds(delay)) }
                } catch {
                    if Task.isCancelled {
                        errors.writeLine("Slow: cancelled after \(n - 1) of \(count) chunks")
                    }
                    throw error
                }
            }
        }
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(Slow()) }
