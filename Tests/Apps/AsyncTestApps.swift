// Async applications for the integration tests (test_async.py).
import SWGIBridge

#if canImport(Glibc)
import Glibc
#endif

/// Misbehaviours and checks, chosen by `?case=`:
/// - `threads`: awaits a timer, a child task and a default actor, then
///   answers whether every step ran on the thread that called the
///   application, and the process's thread count;
/// - `echo`: reads the body with async reads (64 KiB at a time) and answers
///   its length and checksum;
/// - `throw-before`: throws before starting the response;
/// - `no-type`: a 200 without Content-Type (what a validator reports);
/// - `throw-body`: sends one chunk, then its async body throws;
/// - `hang`: awaits for an hour without producing anything (Timeout);
/// - `sleep`: `?ms=` of sleep, then a short answer (load tests);
/// - `flood`: `?mb=` MiB in 64 KiB chunks from an async producer, as fast
///   as the server takes them (the server must pace it, not queue it all);
/// - `flood-write`: `?mb=` MiB written in 64 KiB chunks by a writing body
///   that never waits for anything else (so the task never leaves its
///   start); when a write fails, logs whether the task sees itself cancelled;
/// - `form`: a sync `environ.form()` read inside the async app, answering
///   the fields it found.
struct AsyncCases: AsyncApplication {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        let query = environ.query
        switch query["case"] ?? "" {
        case "threads":
            let first = pthread_self()
            try await Task.sleep(for: .milliseconds(10))
            let afterSleep = pthread_self()
            async let child = pthread_self()
            let inChild = await child
            let inActor = await Probe().thread()
            let same = [afterSleep, inChild, inActor].allSatisfy { pthread_equal($0, first) != 0 }
            try startResponse("200 OK", [("Content-Type", "text/plain")])
            return ["same_thread=\(same) threads=\(procStatus("Threads:"))\n"]
        case "echo":
            var total = 0
            var sum: UInt32 = 0
            while true {
                let block = try await environ.input.read(64 * 1024)
                if block.isEmpty { break }
                total += block.count
                for b in block { sum &+= UInt32(b) }
            }
            try startResponse("200 OK", [("Content-Type", "text/plain")])
            return ["bytes=\(total) sum=\(sum)\n"]
        case "throw-before":
            try await Task.sleep(for: .milliseconds(1))
            throw Failure(description: "async failure before the response")
        case "throw-body":
            try startResponse("200 OK", [("Content-Type", "text/plain")])
            return AsyncBody { write in
                try await write("first chunk\n")
                try await Task.sleep(for: .milliseconds(10))
                throw Failure(description: "async failure inside the body")
            }
        case "hang":
            let errors = environ.errors
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                errors.writeLine("AsyncCases: hang cancelled")
                throw error
            }
            try startResponse("200 OK", [("Content-Type", "text/plain")])
            return ["too late\n"]
        case "no-type":
            // Served as it is; a validator reports the missing Content-Type.
            try startResponse("200 OK", [])
            return ["no type\n"]
        case "sleep":
            let ms = min(Int(query["ms"] ?? "") ?? 100, 10_000)
            try await Task.sleep(for: .milliseconds(ms))
            try startResponse("200 OK", [("Content-Type", "text/plain")])
            return ["slept \(ms) ms\n"]
        case "flood":
            let chunks = min(Int(query["mb"] ?? "") ?? 1, 1024) * 16
            let block = Chunk([UInt8](repeating: UInt8(ascii: "f"), count: 64 * 1024))
            var sent = 0
            try startResponse("200 OK", [("Content-Type", "application/octet-stream"),
                                         ("Content-Length", String(chunks * 64 * 1024))])
            return AsyncBody(next: {
                guard sent < chunks else { return nil }
                sent += 1
                return block
            })
        case "flood-write":
            let chunks = min(Int(query["mb"] ?? "") ?? 1, 1024) * 16
            let block = Chunk([UInt8](repeating: UInt8(ascii: "w"), count: 64 * 1024))
            let errors = environ.errors
            try startResponse("200 OK", [("Content-Type", "application/octet-stream"),
                                         ("Content-Length", String(chunks * 64 * 1024))])
            return AsyncBody { write in
                var sent = 0
                do {
                    while sent < chunks {
                        try await write(block)
                        sent += 1
                    }
                } catch {
                    errors.writeLine("AsyncCases: flood-write stopped after \(sent) chunks, cancelled=\(Task.isCancelled)")
                    throw error
                }
            }
        case "form":
            let form = try environ.form()
            try startResponse("200 OK", [("Content-Type", "text/plain")])
            return [Chunk(form.pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&") + "\n")]
        default:
            try startResponse("404 Not Found", [("Content-Type", "text/plain")])
            return ["unknown case\n"]
        }
    }
}

private actor Probe {
    func thread() -> pthread_t { pthread_self() }
}

@c(swgi_entry_async) public func asyncCases() -> UnsafeRawPointer { exportApplication(AsyncCases()) }
