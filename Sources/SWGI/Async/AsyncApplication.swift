public import _Concurrency
/// An SWGI application that `await`s: the async form of ``Application``,
/// for applications that use Swift's async libraries (database drivers,
/// HTTP clients). Called with the request's ``Environ`` and a
/// ``StartResponse``, it starts the response and returns an ``AsyncBody``.
///
/// ```swift
/// struct Slow: AsyncApplication {
///     func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
///         try startResponse("200 OK", [("Content-Type", "text/plain")])
///         return AsyncBody { writer in
///             for n in 1...10 {
///                 try await writer("chunk \(n)\n")
///                 try await Task.sleep(for: .milliseconds(100))
///             }
///         }
///     }
/// }
/// ```
///
/// Every ``Application`` is also an `AsyncApplication` (its body is served
/// as it is), so async middleware wraps sync applications too. The other way
/// round takes an explicit adapter, ``BlockingApplication``.
///
/// Servers run the application in a task whose code runs on the thread that
/// serves the request (see ``RequestExecutor``): under mod_swgi, Apache's
/// request thread, which keeps every call into Apache. The task is cancelled
/// when the client goes away or the server's time limit passes.
public protocol AsyncApplication: Sendable {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody
}

extension Application {
    /// A sync application where an async one is expected: its body, as it is.
    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        AsyncBody(try callSync(environ, startResponse))
    }

    /// The sync call (in an async context `self(...)` means the async one).
    private func callSync(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try self(environ, startResponse)
    }
}

/// An async application made from a closure.
///
/// ```swift
/// let app = AsyncApp { environ, startResponse in
///     let user = try await database.user(named: environ.query["name"] ?? "")
///     try startResponse("200 OK", [("Content-Type", "text/plain")])
///     return ["Hello, \(user.name)!\n"]
/// }
/// ```
public struct AsyncApp: AsyncApplication {
    private let function: @Sendable (Environ, StartResponse) async throws -> AsyncBody

    public init(_ function: @escaping @Sendable (Environ, StartResponse) async throws -> AsyncBody) {
        self.function = function
    }

    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        try await function(environ, startResponse)
    }
}

/// The body of an async application: chunks produced by `await`ing, and a
/// `close()` that the server calls exactly once, whatever happens.
///
/// Ready chunks, as for ``Body``:
///
/// ```swift
/// return ["Hello world!\n"]
/// ```
///
/// any `AsyncSequence` of chunks, a producer (`nil` ends the body), or a
/// function that writes (each write is sent before it returns):
///
/// ```swift
/// return AsyncBody(rows.map { Chunk($0.csvLine) })
/// return AsyncBody(next: { try await queue.next() })
/// return AsyncBody { writer in try await writer("hello\n") }
/// ```
///
/// The server sends each chunk before it asks for the next. Iterating an
/// `AsyncBody` (middleware does) yields its chunks; a writing body's chunks
/// come as the function writes them.
public struct AsyncBody: AsyncSequence, ExpressibleByArrayLiteral {
    public typealias Element = Chunk
    public typealias Failure = any Error

    enum Storage {
        case sync(Body)
        case producer(() async throws -> Chunk?)
        case writing((AsyncWriter) async throws -> Void)
    }

    let storage: Storage
    let onClose: (() -> Void)?

    /// A body of chunks that are all ready.
    public init(_ chunks: [Chunk], onClose: (() -> Void)? = nil) {
        storage = .sync(Body(chunks))
        self.onClose = onClose
    }

    public init(arrayLiteral elements: Chunk...) {
        self.init(elements)
    }

    /// A sync application's body, served as it is (a file body stays a file
    /// body). Closing this closes it.
    public init(_ body: Body) {
        storage = .sync(body)
        onClose = body.close
    }

    /// A body whose chunks come from `next`, awaited until it returns `nil`
    /// or throws.
    public init(next: @escaping () async throws -> Chunk?, onClose: (() -> Void)? = nil) {
        storage = .producer(next)
        self.onClose = onClose
    }

    /// A body that iterates `sequence`.
    public init<S: AsyncSequence>(_ sequence: S, onClose: (() -> Void)? = nil) where S.Element == Chunk {
        var iterator = sequence.makeAsyncIterator()
        self.init(next: { try await iterator.next(isolation: #isolation) }, onClose: onClose)
    }

    /// A body that `write` produces: each chunk it passes to the writer is
    /// sent (and flushed) before the writer returns; the body ends when
    /// `write` returns, and fails if it throws.
    public init(onClose: (() -> Void)? = nil, _ write: @escaping (AsyncWriter) async throws -> Void) {
        storage = .writing(write)
        self.onClose = onClose
    }

    /// No bytes at all.
    public static var empty: AsyncBody { AsyncBody([]) }

    /// The chunks, when they are all ready (the server sends `Content-Length`).
    public var readyChunks: [Chunk]? {
        if case .sync(let body) = storage { return body.readyChunks }
        return nil
    }

    /// The file this body sends, when it is a sync file body.
    public var fileRegion: FileRegion? {
        if case .sync(let body) = storage { return body.fileRegion }
        return nil
    }

    /// Releases what the body holds. The server calls it exactly once;
    /// middleware that replaces a body must call the inner body's `close()`.
    public func close() {
        onClose?()
    }

    /// A new body with each chunk transformed; closing it closes this one.
    public func map(_ transform: @escaping (Chunk) async throws -> Chunk) -> AsyncBody {
        var inner = makeAsyncIterator()
        return AsyncBody(next: {
            guard let chunk = try await inner.next() else { return nil }
            return try await transform(chunk)
        }, onClose: close)
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(storage: storage)
    }

    /// Walks a body. A writing body's function runs in a task of its own (on
    /// the request's executor) that hands each chunk over as it is written.
    public struct AsyncIterator: AsyncIteratorProtocol {
        private var sync: Body.Iterator?
        private var producer: (() async throws -> Chunk?)?
        private var relay: WriterRelay?

        init(storage: Storage) {
            switch storage {
            case .sync(let body): sync = body.makeIterator()
            case .producer(let next): producer = next
            case .writing(let write): relay = WriterRelay(write)
            }
        }

        public mutating func next() async throws -> Chunk? {
            if sync != nil { return try sync!.next() }
            if let producer { return try await producer() }
            return try await relay!.next()
        }
    }
}

/// The writer an ``AsyncBody`` function writes with. Each call returns once
/// its chunk is sent; it throws when the client has gone (and
/// `CancellationError` once the request's task is cancelled).
public struct AsyncWriter {
    let function: (Chunk) async throws -> Void

    public init(_ function: @escaping (Chunk) async throws -> Void) {
        self.function = function
    }

    public func callAsFunction(_ chunk: Chunk) async throws {
        try Task.checkCancellation()
        try await function(chunk)
    }
}

/// Iterates a writing body from outside: the function runs in a task of
/// its own (on the request's executor), each write waiting until the
/// iterator asks for its chunk. Used when middleware iterates such a body;
/// servers hand the writer straight to the response instead. Dropping the
/// iterator, or cancelling the task that iterates, cancels the function.
final class WriterRelay {
    private var write: ((AsyncWriter) async throws -> Void)?
    private var chunks: AsyncThrowingStream<Chunk, any Error>.Iterator?
    private var demand: AsyncStream<Void>.Continuation?
    private var task: Task<Void, Never>?

    init(_ write: @escaping (AsyncWriter) async throws -> Void) {
        self.write = write
    }

    deinit {
        demand?.finish()
        task?.cancel()
    }

    func next() async throws -> Chunk? {
        if let write {
            self.write = nil
            start(write)
        }
        demand?.yield()
        let task = self.task
        return try await withTaskCancellationHandler {
            try await chunks?.next()
        } onCancel: {
            task?.cancel()
        }
    }

    private func start(_ write: @escaping (AsyncWriter) async throws -> Void) {
        let (chunks, output) = AsyncThrowingStream<Chunk, any Error>.makeStream()
        let (asks, demand) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.demand = demand
        self.chunks = chunks.makeAsyncIterator()
        let box = UncheckedBox((write, asks))
        task = Task(executorPreference: RequestExecutor.current) {
            let (write, asks) = box.value
            var pending = asks.makeAsyncIterator()
            do {
                try await write(AsyncWriter { chunk in
                    // Each chunk waits for the iterator to ask for it.
                    guard await pending.next(isolation: #isolation) != nil else { throw CancellationError() }
                    output.yield(chunk)
                })
                output.finish()
            } catch {
                output.finish(throwing: error)
            }
        }
    }
}

/// Carries a value the compiler cannot prove safe across a task boundary,
/// where the code guarantees one user at a time.
package struct UncheckedBox<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}

/// An async application where a sync one is expected (sync middleware, a
/// sync-only server): the explicit adapter. Each step (the call, then each
/// chunk) runs as a task on a ``RequestExecutor`` of the calling thread,
/// which blocks until the step is done; the body's `close()` shuts the
/// executor down. Cancellation reaches the step that is running, not the
/// steps to come; under mod_swgi, export the async application itself
/// instead, which runs the whole request as one task.
///
/// ```swift
/// let app = SomeSyncMiddleware(BlockingApplication(MyAsyncApp()))
/// ```
public struct BlockingApplication<Wrapped: AsyncApplication>: Application {
    public let wrapped: Wrapped

    public init(_ wrapped: Wrapped) {
        self.wrapped = wrapped
    }

    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let executor = RequestExecutor()
        let call = UncheckedBox((wrapped, environ, startResponse))
        let returned = executor.run { () async -> Result<AsyncBody, any Error> in
            do {
                return .success(try await call.value.0(call.value.1, call.value.2))
            } catch {
                return .failure(error)
            }
        }
        let body: AsyncBody
        do {
            body = try returned!.get()  // no timeout: run returns the task's result
        } catch {
            executor.shutdown()
            throw error
        }
        if case .sync(let inner) = body.storage {
            executor.shutdown()
            return inner
        }
        let iterator = UncheckedBox(IteratorHolder(body.makeAsyncIterator()))
        return Body(next: {
            let step = executor.run { () async -> Result<Chunk?, any Error> in
                do {
                    return .success(try await iterator.value.next())
                } catch {
                    return .failure(error)
                }
            }
            return try step!.get()
        }, onClose: {
            body.close()
            executor.shutdown()
        })
    }
}

/// An async iterator that several steps advance in turn.
final class IteratorHolder {
    var iterator: AsyncBody.AsyncIterator

    init(_ iterator: AsyncBody.AsyncIterator) {
        self.iterator = iterator
    }

    func next() async throws -> Chunk? {
        try await iterator.next()
    }
}
