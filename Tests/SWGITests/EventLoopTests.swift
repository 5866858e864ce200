import Dispatch
import Synchronization
import Testing
@testable import SWGI
#if canImport(Glibc)
import Glibc
#endif

/// A stand-in for a server's event loop (swgi-serve's SwiftNIO loops): one
/// thread running closures in order.
private final class Loop: Sendable {
    private let queue = Mutex<[@Sendable () -> Void]>([])
    private let signal = DispatchSemaphore(value: 0)
    private let threadID = Mutex<UInt>(0)
    private let stopped = Mutex(false)

    init() {
        let started = DispatchSemaphore(value: 0)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Start(loop: self, started: started)).toOpaque()
        pthread_create(&thread, nil, { arg in
            let start = Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue()
            start.loop.run(started: start.started)
            return nil
        }, context)
        pthread_detach(thread)
        started.wait()
    }

    private final class Start {
        let loop: Loop
        let started: DispatchSemaphore
        init(loop: Loop, started: DispatchSemaphore) {
            self.loop = loop
            self.started = started
        }
    }

    var thread: UInt { threadID.withLock { $0 } }

    func execute(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { $0.append(work) }
        signal.signal()
    }

    func stop() {
        stopped.withLock { $0 = true }
        signal.signal()
    }

    private func run(started: DispatchSemaphore) {
        threadID.withLock { $0 = UInt(pthread_self()) }
        started.signal()
        while true {
            signal.wait()
            if stopped.withLock({ $0 }) { return }
            let work: (@Sendable () -> Void)? = queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            work?()
        }
    }

    /// An executor whose jobs this loop runs, as SWGIBridge makes for handle_async.
    func executor() -> RequestExecutor {
        RequestExecutor(schedule: { [self] executor, job in
            let job = UncheckedBox(job)
            execute { executor.runJob(job.value) }
        })
    }
}

/// A request body that arrives on the loop, read without waiting (an event
/// loop's host): `read` throws `.wouldBlock` when nothing is there yet.
private final class ArrivingSource: InputSource, @unchecked Sendable {
    private let state = Mutex<(chunks: [[UInt8]], ended: Bool, waiter: CheckedContinuation<Void, Never>?)>(([], false, nil))
    let executor: RequestExecutor
    /// Waits that suspended the reader (nothing was there yet).
    let suspended = Mutex(0)

    init(executor: RequestExecutor) { self.executor = executor }

    var requestExecutor: RequestExecutor? { executor }
    var readsWithoutWaiting: Bool { true }

    func arrive(_ bytes: [UInt8]?) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let bytes { state.chunks.append(bytes) } else { state.ended = true }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try state.withLock { state in
            guard !state.chunks.isEmpty else {
                if state.ended { return 0 }
                throw SWGIError(.wouldBlock, "nothing yet")
            }
            let first = state.chunks.removeFirst()
            let n = min(first.count, buffer.count)
            first.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if n < first.count { state.chunks.insert(Array(first[n...]), at: 0) }
            return n
        }
    }

    func waitReadable() async throws {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if !state.chunks.isEmpty || state.ended { return true }
                state.waiter = continuation
                return false
            }
            if ready {
                continuation.resume()
            } else {
                suspended.withLock { $0 += 1 }
            }
        }
    }

    /// Whether a reader is suspended, waiting for bytes.
    var hasWaiter: Bool { state.withLock { $0.waiter != nil } }
}

/// A transport that queues (as on an event loop) and says when it wants
/// more: each wait is resumed by the loop a little later.
private final class QueueingTransport: ResponseTransport, @unchecked Sendable {
    let loop: Loop
    let events = Mutex<[String]>([])
    init(loop: Loop) { self.loop = loop }

    var queuesOutput: Bool { true }
    func sendHead(_ head: ResponseHead) throws { events.withLock { $0.append("head") } }
    func sendBody(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws {
        events.withLock { $0.append("body \(bytes.count)") }
    }
    func waitWritable() async throws {
        events.withLock { $0.append("wait") }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resume = UncheckedBox(continuation)
            loop.execute {
                usleep(2000)
                resume.value.resume()
            }
        }
    }
}

/// A request body read by a task on `loop`: `pieces`, then its end, each
/// delivered from another thread once the reader is suspended waiting for it.
private struct ArrivingBody {
    let loop = Loop()
    let executor: RequestExecutor
    let source: ArrivingSource
    let input: UncheckedBox<RequestInput>

    init(_ pieces: [[UInt8]]) {
        executor = loop.executor()
        source = ArrivingSource(executor: executor)
        input = UncheckedBox(RequestInput(source: source))
        let (source, feeder) = (self.source, Loop())
        feeder.execute {
            for piece in pieces + [nil] {
                for _ in 0..<5000 where !source.hasWaiter { usleep(1000) }
                source.arrive(piece)
            }
            feeder.stop()
        }
    }
}

/// A value shared between the test and its tasks.
private final class Cell<T: Sendable>: Sendable {
    private let mutex: Mutex<T>
    init(_ value: T) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R { try mutex.withLock { try body(&$0) } }
}

/// Starts `operation` on `executor` and awaits its end (the test's own task
/// waits without holding a thread: a blocked test could starve the global
/// executor that other tests need).
private func startAndWait(_ executor: RequestExecutor, _ operation: @escaping @Sendable () async -> Void) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let resume = UncheckedBox(continuation)
        executor.start {
            await operation()
            executor.shutdown()  // as SWGIBridge does before its done
            resume.value.resume()
        }
    }
}

private actor Counter {
    var count = 0
    func thread() -> UInt {
        count += 1
        return UInt(pthread_self())
    }
}

@Suite struct EventLoopTests {
    @Test func aTaskStartedOnALoopRunsEveryStepThere() async {
        let loop = Loop()
        defer { loop.stop() }
        let executor = loop.executor()
        let threads = Cell<[UInt]>([])
        let sawCurrent = Cell<[Bool]>([])
        await startAndWait(executor) {
            let note: @Sendable () -> Void = {
                threads.withLock { $0.append(UInt(pthread_self())) }
                sawCurrent.withLock { $0.append(RequestExecutor.current === executor) }
            }
            note()
            try? await Task.sleep(for: .milliseconds(5))
            note()
            async let child: Void = note()
            await child
            let inActor = await Counter().thread()
            threads.withLock { $0.append(inActor) }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { note() }
            }
        }
        let seen = threads.withLock { $0 }
        #expect(seen.count == 5)
        #expect(seen.allSatisfy { $0 == loop.thread })
        #expect(sawCurrent.withLock { $0 }.allSatisfy { $0 })
    }

    @Test func jobsAfterShutdownDoNotReachTheLoop() async {
        let loop = Loop()
        defer { loop.stop() }
        let executor = loop.executor()
        let thread = Cell<UInt>(0)
        await startAndWait(executor) {
            // A task of its own that outlives the request.
            Task(executorPreference: RequestExecutor.current) {
                try? await Task.sleep(for: .milliseconds(200))
                thread.withLock { $0 = UInt(pthread_self()) }
            }
        }
        for _ in 0..<1000 where thread.withLock({ $0 }) == 0 {
            try? await Task.sleep(for: .milliseconds(10))
        }
        #expect(thread.withLock { $0 } != 0)
        #expect(thread.withLock { $0 } != loop.thread)
    }

    @Test func asyncReadsAwaitWhatArrives() async {
        let body = ArrivingBody([Array("ab\ncd".utf8), Array("e\nfg".utf8), Array("h".utf8)])
        defer { body.loop.stop() }
        let (executor, source, input) = (body.executor, body.source, body.input)
        let got = Cell<[String]>([])
        await startAndWait(executor) {
            do {
                while let line = try await input.value.readLine() {
                    got.withLock { $0.append(String(decoding: line, as: UTF8.self)) }
                }
            } catch {
                got.withLock { $0.append("error: \(error)") }
            }
        }
        #expect(got.withLock { $0 } == ["ab\n", "cde\n", "fgh"])
        #expect(source.suspended.withLock { $0 } >= 3)
    }

    @Test func aCountedReadWaitsForEnoughBytes() async {
        let body = ArrivingBody([[UInt8](repeating: 1, count: 3000), [UInt8](repeating: 2, count: 3000)])
        defer { body.loop.stop() }
        let (executor, input) = (body.executor, body.input)
        let got = Cell<[Int]>([])
        await startAndWait(executor) {
            let first = (try? await input.value.read(4000))?.count ?? -1
            let rest = (try? await input.value.read())?.count ?? -1
            let end = (try? await input.value.read(10))?.count ?? -1
            got.withLock { $0 = [first, rest, end] }
        }
        #expect(got.withLock { $0 } == [4000, 2000, 0])
        #expect(body.source.suspended.withLock { $0 } == 3)
    }

    @Test func aSyncReadThatWouldWaitFailsClearly() {
        let source = ArrivingSource(executor: RequestExecutor())
        let input = RequestInput(source: source)
        #expect(throws: SWGIError.self) { try input.read(10) }
        #expect(input.error.flatMap { $0 as? SWGIError }?.code == .wouldBlock)
    }

    @Test func outputWaitsUntilTheTransportWantsMore() async {
        let loop = Loop()
        defer { loop.stop() }
        let executor = loop.executor()
        let transport = QueueingTransport(loop: loop)
        let produced = Cell(0)
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return AsyncBody(next: {
                let n = produced.withLock { count -> Int in
                    count += 1
                    return count
                }
                transport.events.withLock { $0.append("next \(n)") }
                return n <= 3 ? Chunk("x") : nil
            })
        }
        let outcome = Cell<GatewayOutcome?>(nil)
        let environ = UncheckedBox(Environ(variables: ["REQUEST_METHOD": "GET"]))
        await startAndWait(executor) {
            let result = await Gateway.run(async: app, environ: environ.value, transport: transport, name: "t") { _, _ in }
            outcome.withLock { $0 = result }
        }
        #expect(outcome.withLock { $0 } == .completed)
        #expect(transport.events.withLock { $0 } == [
            "next 1", "head", "body 1", "wait", "next 2", "body 1", "wait", "next 3", "body 1", "wait", "next 4",
        ])
    }

    @Test func writerCallsWaitToo() async {
        let loop = Loop()
        defer { loop.stop() }
        let executor = loop.executor()
        let transport = QueueingTransport(loop: loop)
        let app = AsyncApp { _, start in
            let write = try start("200 OK", [("Content-Type", "text/plain")])
            try await write("a")
            try await write("b")
            return .empty
        }
        let environ = UncheckedBox(Environ(variables: ["REQUEST_METHOD": "GET"]))
        await startAndWait(executor) {
            _ = await Gateway.run(async: app, environ: environ.value, transport: transport, name: "t") { _, _ in }
        }
        #expect(transport.events.withLock { $0 } == ["head", "body 1", "wait", "body 1", "wait"])
    }
}
