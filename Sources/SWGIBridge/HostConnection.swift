internal import _Concurrency
internal import CSWGIABI
import SWGI
internal import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The host's side of one request, seen from Swift: the request body
/// (`InputSource`), the response (`ResponseTransport`), the log and the
/// environ variables (the request's `EnvironSource`: one object a request
/// for all of them).
///
/// The host's callbacks may be used from any thread while `handle()` runs,
/// but never two at once (swgi_abi.h): every call into the host holds
/// `state`'s lock, and after `close()` (when `handle()` returns) none is made.
///
/// The environ's variables are read from the host as the application asks:
/// nothing is copied or decoded until it asks for a key. Two kinds of host:
/// one that passes the pairs with the request (read in place), and one that
/// computes a variable when asked (mod_swgi, through `environ_get`; the
/// whole environ only through `environ_all`). Either way the variables live
/// in the host's request (Apache's request pool), so they are read only
/// while the request runs, under the lock. An application that keeps the
/// environ past the request gets a copy, made by ``keepAfterRequest()``
/// before the request ends.
///
/// A request thread keeps its last connection for its next request when
/// nothing else holds it at the end (``forRequest(_:callbacks:)`` and
/// ``recycle(_:)``): one allocation and teardown a request fewer. The
/// request's values below are set before the request runs and stay put
/// while it runs (so the runtime's exclusivity checks are left out).
final class HostConnection: EnvironSource, RequestHost, ResponseTransport, GatewayReporter, @unchecked Sendable {
    @exclusivity(unchecked) private var host: UnsafeMutableRawPointer?
    @exclusivity(unchecked) private var callbacks: UnsafePointer<swgi_host_v1>
    /// What the lock guards. A futex word held in the object: taking it is
    /// a compare-and-swap when nobody waits (a pthread mutex would be one
    /// more allocation a request, and a library call each time).
    private let state = Mutex(State())
    private struct State {
        var closed = false
        /// The executor of an async request, set before its task starts:
        /// async reads of `swgi.input` hop to its thread, and its task is
        /// cancelled (once) when the client turns out to be gone.
        var requestExecutor: RequestExecutor?
        var taskCancelled = false
    }
    /// A host that serves on an event loop (handle_async): its reads and
    /// writes never wait; the task awaits its wait_readable/wait_writable.
    let onEventLoop: Bool
    /// The environ pairs the host passed with the request, if it did.
    @exclusivity(unchecked) private var pairs: UnsafePointer<swgi_pair>?
    @exclusivity(unchecked) private var count: Int
    /// Whether the host computes variables when asked.
    @exclusivity(unchecked) private var asksHost: Bool
    /// The variables' copy made for after the request (under the lock).
    @exclusivity(unchecked) private var kept: EnvironBlock?

    init(_ request: swgi_request_v1, callbacks: UnsafePointer<swgi_host_v1>, onEventLoop: Bool = false) {
        self.host = request.host
        self.callbacks = callbacks
        self.onEventLoop = onEventLoop
        pairs = request.environ
        count = request.environ == nil ? 0 : request.environ_count
        asksHost = request.environ == nil && Self.hasEnvironCallbacks(callbacks)
        super.init()
    }

    /// A connection for a request on this thread (not on an event loop):
    /// the one its last request left for it, else a new one.
    static func forRequest(_ request: swgi_request_v1, callbacks: UnsafePointer<swgi_host_v1>) -> HostConnection {
        guard let stored = pthread_getspecific(spareKey) else { return HostConnection(request, callbacks: callbacks) }
        pthread_setspecific(spareKey, nil)
        let connection = Unmanaged<HostConnection>.fromOpaque(stored).takeRetainedValue()
        connection.host = request.host
        connection.callbacks = callbacks
        connection.pairs = request.environ
        connection.count = request.environ == nil ? 0 : request.environ_count
        connection.asksHost = request.environ == nil && hasEnvironCallbacks(callbacks)
        connection.kept = nil
        connection.state.withLock { $0 = State() }
        return connection
    }

    /// The request is over (closed): keeps the connection for this thread's
    /// next request if nothing else holds it (an environ, stream or task the
    /// application kept holds it; then it is left to them).
    static func recycle(_ connection: inout HostConnection) {
        guard !connection.onEventLoop, isKnownUniquelyReferenced(&connection),
              pthread_getspecific(spareKey) == nil else { return }
        connection.kept = nil  // (nothing reads it any more)
        pthread_setspecific(spareKey, Unmanaged.passRetained(connection).toOpaque())
    }

    /// Runs `body` holding the lock, if the request is still running.
    private func locked<R>(_ body: () -> R) -> R? {
        state.withLock { state in state.closed ? nil : body() }
    }

    /// Runs `body` holding the lock; it learns whether the request still runs.
    func withLock<R>(_ body: (_ running: Bool) -> R) -> R {
        state.withLock { state in body(!state.closed) }
    }

    /// The executor of an async request, set before its task starts (nil
    /// once the request is over).
    var requestExecutor: RequestExecutor? {
        get { state.withLock { $0.requestExecutor } }
        set { state.withLock { $0.requestExecutor = newValue } }
    }

    /// The request is over: the host's state is gone, and the connection
    /// lets go of the request's executor (on an event loop, the executor's
    /// schedule holds this connection: the two would keep each other).
    func close() {
        state.withLock { state in
            state.closed = true
            state.requestExecutor = nil
        }
    }

    /// Whether the host computes environ variables when asked.
    private static func hasEnvironCallbacks(_ callbacks: UnsafePointer<swgi_host_v1>) -> Bool {
        has(callbacks, \.environ_all) && callbacks.pointee.environ_get != nil && callbacks.pointee.environ_all != nil
    }

    /// Whether the host's table (built at its `size`) reaches `field`.
    static func has<F>(_ callbacks: UnsafePointer<swgi_host_v1>, _ field: KeyPath<swgi_host_v1, F>) -> Bool {
        Int(callbacks.pointee.size) >= MemoryLayout<swgi_host_v1>.offset(of: field)! + MemoryLayout<F>.size
    }

    /// Whether the host offers what handle_async needs.
    static func servesOnEventLoop(_ callbacks: UnsafePointer<swgi_host_v1>) -> Bool {
        has(callbacks, \.wait_writable) && callbacks.pointee.schedule != nil
            && callbacks.pointee.wait_readable != nil && callbacks.pointee.wait_writable != nil
    }

    // MARK: the environ's variables (EnvironSource)

    /// Runs `body` while the request runs (lock held), else asks the kept copy.
    private func read<R>(_ body: () -> R, afterwards: (EnvironBlock) -> R) -> R? {
        withLock { running in
            if let kept { return afterwards(kept) }
            guard running else { return nil }
            return body()
        }
    }

    /// The bytes of `key`'s value (lock held, request running).
    private func withValue<R>(of key: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        if asksHost {
            guard let value = environValueLocked(key) else { return nil }
            return body(value.bytes)
        }
        let all = UnsafeBufferPointer(start: pairs, count: count)
        var key = key
        return key.withUTF8 { k -> R? in
            for pair in all where pair.name.len == k.count {
                if k.isEmpty || memcmp(pair.name.data, k.baseAddress!, k.count) == 0 {
                    return body(pair.value.bytes)
                }
            }
            return nil
        }
    }

    /// Every pair (lock held, request running).
    private func allPairs() -> UnsafeBufferPointer<swgi_pair> {
        asksHost ? environAllLocked() : UnsafeBufferPointer(start: pairs, count: count)
    }

    override func string(for key: String) -> String? {
        // The common lookup written out: one lock, the key's bytes in place.
        state.withLock { state -> String? in
            if let kept { return kept.string(for: key) }
            guard !state.closed else { return nil }
            guard asksHost else { return withValue(of: key) { String(utf8Repairing: $0) } }
            guard let value = environValueLocked(key) else { return nil }
            return String(utf8Repairing: value.bytes)
        }
    }

    override func bytes(for key: String) -> [UInt8]? {
        read({ withValue(of: key) { Array($0) } }, afterwards: { $0.bytes(for: key) }) ?? nil
    }

    override func dictionary() -> [String: String] {
        read({ Self.copy(allPairs()).dictionary() }, afterwards: { $0.dictionary() }) ?? [:]
    }

    override func undecodableKeys() -> [String] {
        read({ Self.copy(allPairs()).undecodableKeys() }, afterwards: { $0.undecodableKeys() }) ?? []
    }

    /// Gives the environ a copy of its variables that outlives the request.
    /// Called in the request's last moments.
    func keepAfterRequest() {
        withLock { running in
            if running && kept == nil {
                kept = Self.copy(allPairs())
            }
        }
    }

    /// The pairs copied into a block of their own.
    private static func copy(_ pairs: UnsafeBufferPointer<swgi_pair>) -> EnvironBlock {
        var byteCount = 0
        for pair in pairs {
            byteCount += pair.name.bytes.count + pair.value.bytes.count
        }
        return EnvironBlock(capacity: pairs.count, byteCount: byteCount) { builder in
            for pair in pairs {
                builder.append(name: UnsafeRawBufferPointer(pair.name.bytes),
                               value: UnsafeRawBufferPointer(pair.value.bytes))
            }
        }
    }

    /// One environ variable from the host (the caller holds the lock, and
    /// the request is running).
    func environValueLocked(_ name: String) -> swgi_bytes? {
        var value = swgi_bytes(data: nil, len: 0)
        let found = Self.withBytes(of: name) { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { p in
                callbacks.pointee.environ_get(host, p.baseAddress, p.count, &value)
            }
        }
        return found != 0 ? value : nil
    }

    /// The UTF-8 of `s`, in place where the string has contiguous storage.
    @inline(__always)
    private static func withBytes<R>(of s: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = s.utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = s  // a string without contiguous UTF-8 (bridged)
        return copy.withUTF8(body)
    }

    /// Every environ variable from the host (lock held, request running).
    func environAllLocked() -> UnsafeBufferPointer<swgi_pair> {
        var pairs: UnsafePointer<swgi_pair>?
        var count = 0
        callbacks.pointee.environ_all(host, &pairs, &count)
        return UnsafeBufferPointer(start: pairs, count: pairs == nil ? 0 : count)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let n = locked {
            callbacks.pointee.read(host, base.assumingMemoryBound(to: CChar.self), buffer.count)
        } ?? -1
        if n == Int64(SWGI_EAGAIN) {
            throw SWGIError(.wouldBlock, "swgi.input was read without await, before the bytes arrived, on a server that runs async applications on its event loop (where a read cannot wait): read with `try await environ.input.read()`")
        }
        if n < 0 {
            cancelTask(because: "the request body could not be read")
            throw SWGIError(.inputFailed, "the request body could not be read (the server's log says why)")
        }
        return Int(n)
    }

    func sendHead(_ head: ResponseHead) throws {
        // The strings are copied into one scratch buffer (on the stack when
        // small) so that the pairs can point into it for the call; the
        // header pairs are read in place (borrowed, not copied and retained).
        let rc = head.headers.withUnsafeBufferPointer { headers in
            var byteCount = head.statusLine.utf8.count
            for i in headers.indices {
                byteCount += headers[i].0.utf8.count + headers[i].1.utf8.count
            }
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: byteCount) { bytes in
                withUnsafeTemporaryAllocation(of: swgi_pair.self, capacity: headers.count) { pairs in
                    var used = 0
                    let status = HostConnection.put(head.statusLine, into: bytes, at: &used)
                    for i in headers.indices {
                        let name = HostConnection.put(headers[i].0, into: bytes, at: &used)
                        pairs[i] = swgi_pair(name: name, value: HostConnection.put(headers[i].1, into: bytes, at: &used))
                    }
                    return locked {
                        callbacks.pointee.start_response(host, Int32(head.status), status,
                                                         pairs.baseAddress, headers.count)
                    } ?? SWGI_ECLIENT
                }
            }
        }
        try check(rc)
    }

    /// Copies the UTF-8 of `s` into `buffer` at `offset`, which it advances.
    private static func put(_ s: String, into buffer: UnsafeMutableBufferPointer<UInt8>,
                            at offset: inout Int) -> swgi_bytes {
        let start = offset
        var end = offset
        let copied: Void? = s.utf8.withContiguousStorageIfAvailable { utf8 in
            precondition(end + utf8.count <= buffer.count)
            if let from = utf8.baseAddress, !utf8.isEmpty {
                (buffer.baseAddress! + end).update(from: from, count: utf8.count)
            }
            end += utf8.count
        }
        if copied == nil {  // a string without contiguous UTF-8 (bridged)
            for byte in s.utf8 {
                precondition(end < buffer.count)
                buffer[end] = byte
                end += 1
            }
        }
        offset = end
        let base = UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
        return swgi_bytes(data: base + start, len: end - start)
    }

    func sendBody(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try check(locked {
            callbacks.pointee.write(host, base.assumingMemoryBound(to: CChar.self), bytes.count, flush ? 1 : 0)
        } ?? SWGI_ECLIENT)
    }

    func sendFile(_ region: FileRegion) throws -> Bool {
        // A host built before send_file existed: the body is iterated instead.
        guard Self.has(callbacks, \.send_file), let sendFile = callbacks.pointee.send_file else { return false }
        var path = region.path
        let rc = path.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { p in
                locked {
                    sendFile(host, p.baseAddress, p.count, UInt64(region.offset), UInt64(region.length), 1)
                } ?? SWGI_ECLIENT
            }
        }
        if rc == SWGI_EFILE {
            throw SWGIError(.badRequest, "the server could not open \(region.path)")
        }
        try check(rc)
        return true
    }

    func log(_ level: LogLevel, _ message: String) {
        var message = message
        message.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { p in
                _ = locked {
                    callbacks.pointee.log(host, Int32(level.rawValue), p.baseAddress, p.count)
                }
            }
        }
    }

    /// `swgi.errors`' lines.
    func logError(_ line: String) {
        log(.error, line)
    }

    /// The application's file, for log lines.
    var applicationName: String {
        string(for: "mod_swgi.application_path") ?? string(for: "SCRIPT_FILENAME") ?? "(unnamed)"
    }

    // MARK: a host on an event loop

    var readsWithoutWaiting: Bool { onEventLoop }
    var queuesOutput: Bool { onEventLoop }

    func waitReadable() async throws {
        await wait(callbacks.pointee.wait_readable)
    }

    func waitWritable() async throws {
        await wait(callbacks.pointee.wait_writable)
    }

    /// Suspends until the host calls back through `waitFunction` (at once
    /// when it says it is ready, or the request is over).
    private func wait(_ waitFunction: WaitFunction?) async {
        guard let waitFunction else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waker = Unmanaged.passRetained(Waker(continuation))
            let pending = locked { waitFunction(host, wakeTrampoline, waker.toOpaque()) == 0 } ?? false
            if !pending {
                waker.release()
                continuation.resume()
            }
        }
    }

    /// Hands one job of the request's task to the host's event loop (the
    /// executor calls this under its lock, until the request is over).
    func schedule(_ job: UnownedJob, on executor: RequestExecutor) {
        let box = Unmanaged.passRetained(ScheduledJob(job, executor)).toOpaque()
        callbacks.pointee.schedule(host, jobTrampoline, box)
    }

    /// Cancels the task of an async request (once), saying why in the log.
    private func cancelTask(because reason: String) {
        // Only while the request runs: its thread's executor goes on to
        // serve other requests, whose task is not this one's to cancel.
        let executor: RequestExecutor? = state.withLock { state in
            if state.closed || state.taskCancelled { return nil }
            state.taskCancelled = true
            return state.requestExecutor
        }
        guard let executor else { return }
        log(.info, "SWGI: \(reason): the request's task is cancelled")
        executor.cancel()
    }

    private func check(_ rc: Int32) throws {
        switch rc {
        case SWGI_OK: return
        case SWGI_ECLIENT:
            cancelTask(because: "the client has gone")
            throw SWGIError(.clientDisconnected, "the client has disconnected")
        default: throw SWGIError(.responseNotStarted, "the server refused the response (code \(rc))")
        }
    }
}

/// Each request thread's spare connection (see `HostConnection.recycle`),
/// released with the thread.
private let spareKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { stored in
        if let stored { Unmanaged<HostConnection>.fromOpaque(stored).release() }
    }
    return key
}()

typealias WaitFunction = @convention(c) (
    UnsafeMutableRawPointer?, (@convention(c) (UnsafeMutableRawPointer?) -> Void)?, UnsafeMutableRawPointer?
) -> Int32

/// A task waiting for the host: resumed once, by the host's wake call.
private final class Waker {
    let continuation: CheckedContinuation<Void, Never>
    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
}

private let wakeTrampoline: @convention(c) (UnsafeMutableRawPointer?) -> Void = { arg in
    guard let arg else { return }
    Unmanaged<Waker>.fromOpaque(arg).takeRetainedValue().continuation.resume()
}

/// A job on its way to the host's event loop.
private final class ScheduledJob {
    let job: UnownedJob
    let executor: RequestExecutor
    init(_ job: UnownedJob, _ executor: RequestExecutor) {
        self.job = job
        self.executor = executor
    }
}

private let jobTrampoline: @convention(c) (UnsafeMutableRawPointer?) -> Void = { arg in
    guard let arg else { return }
    let scheduled = Unmanaged<ScheduledJob>.fromOpaque(arg).takeRetainedValue()
    scheduled.executor.runJob(scheduled.job)
}

extension swgi_bytes {
    /// The bytes.
    var bytes: UnsafeBufferPointer<UInt8> {
        guard let data else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: len)
    }
}
