internal import _Concurrency
extension Gateway {
    /// Runs an async application for one request, by the same rules as the
    /// sync ``run(_:environ:transport:name:log:)``: the head with the first
    /// non-empty chunk, each chunk sent (and flushed) before the next is
    /// awaited, `Content-Length` enforced, a 500 when nothing was sent yet,
    /// and the body's `close()` called exactly once.
    ///
    /// Servers call it inside ``RequestExecutor/run(timeout:_:)``, so that
    /// the transport is used from the request's thread only.
    public static func run<A: AsyncApplication, T: ResponseTransport>(
        async app: A, environ: Environ, transport: T, name: @escaping @autoclosure () -> String,
        log: @escaping (LogLevel, String) -> Void
    ) async -> GatewayOutcome {
        await run(async: app, environ: environ, transport: transport, reporter: ClosureReporter(name: name, log: log))
    }

    /// The same, with the log and the application's name from one object
    /// (see the sync `run(_:environ:transport:reporter:)`).
    package static func run<A: AsyncApplication, T: ResponseTransport>(
        async app: A, environ: Environ, transport: T, reporter: any GatewayReporter
    ) async -> GatewayOutcome {
        await serve(async: app, environ: environ, transport: transport, reporter: reporter)
    }

    /// The same, for a caller that learns how the request ended from
    /// `ending`, called as the last thing this does: the caller then has
    /// nothing left to run after its `await`, and the compiler's switch back
    /// to its executor is left out (with a task executor preference, each
    /// such switch takes the task's status lock: about 200 instructions).
    package static func run<A: AsyncApplication, T: ResponseTransport>(
        async app: A, environ: Environ, transport: T, reporter: any GatewayReporter, ending: any GatewayEnding
    ) async {
        ending.ended(await serve(async: app, environ: environ, transport: transport, reporter: reporter))
    }

    @inline(__always)
    private static func serve<A: AsyncApplication, T: ResponseTransport>(
        async app: A, environ: Environ, transport: T, reporter: any GatewayReporter
    ) async -> GatewayOutcome {
        let response = Response(transport: transport, reporter: reporter, environ: environ)
        let outcome: GatewayOutcome
        do {  // (no `AsyncBody?` kept for the close: see the sync run)
            let body = try await app(environ, response.startResponse)
            do {
                // Chunks at hand, for a transport whose sends wait themselves
                // (Apache): sent as the sync gateway sends them, with no
                // async frame for the drain (about 500 bytes of the task's
                // allocator a request).
                if case .sync(let chunks) = body.storage, !transport.queuesOutput {
                    try response.drain(chunks)
                } else {
                    try await response.drain(body)
                }
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

/// Told how a request ended (see `Gateway.run(async:...:ending:)`).
package protocol GatewayEnding: AnyObject {
    func ended(_ outcome: GatewayOutcome)
}

extension Response {
    /// Sends every chunk of an async body, each before the next is awaited.
    /// A transport that queues (an event loop) is awaited after each chunk
    /// until it wants more. (Chunks at hand for a transport that does not
    /// queue go through the sync `drain`: see `Gateway.run(async:)`.)
    func drain(_ body: AsyncBody) async throws {
        switch body.storage {
        case .sync(let body):
            guard let streaming = try prepare(body) else { return }
            var chunks = body.makeIterator()
            while let chunk = try chunks.next() {
                guard try write(chunk, flush: streaming) else { break }
                try await awaitRoom()
            }
        case .producer(let next):
            while let chunk = try await next() {
                guard try write(chunk, flush: true) else { break }
                try await awaitRoom()
            }
        case .writing(let function):
            // Past the declared Content-Length (logged once), writes are dropped.
            let full = Flag()
            try await function(AsyncWriter { chunk in
                if !full.value { full.value = !(try self.write(chunk, flush: true)) }
                try await self.awaitRoom()
            })
        }
    }

    /// Returns once a transport that queues (an event loop) wants more
    /// output; at once for one whose sends wait themselves.
    func awaitRoom() async throws {
        if transport.queuesOutput { try await transport.waitWritable() }
    }
}

/// A flag the writer's closure sets. (A captured `var` would be boxed and
/// pay the runtime's exclusivity check, about 80 instructions, on every
/// read and write: twice a chunk. The writer is used by one task at a time.)
private final class Flag {
    @exclusivity(unchecked) var value = false
}
