import Synchronization
import Testing
@testable import SWGI
import SWGITesting
#if canImport(Glibc)
import Glibc
#endif

final class Holder<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The thread a piece of code ran on.
private func thread() -> UInt { UInt(pthread_self()) }

private actor Tally {
    var count = 0
    func bump() -> Int {
        count += 1
        return count
    }
}

/// Records what an async application saw: threads, cancellation, close.
private final class Seen: Sendable {
    let threads = Mutex<[UInt]>([])
    let events = Mutex<[String]>([])
    func thread(_ id: UInt) { threads.withLock { $0.append(id) } }
    func event(_ e: String) { events.withLock { $0.append(e) } }
    var eventList: [String] { events.withLock { $0 } }
    var threadList: [UInt] { threads.withLock { $0 } }
}

@Suite struct AsyncTests {
    @Test func everyStepRunsOnTheServingThread() {
        let seen = Seen()
        let tally = Tally()
        let app = AsyncApp { _, start in
            seen.thread(thread())
            try await Task.sleep(for: .milliseconds(5))  // resumed by a timer elsewhere
            seen.thread(thread())
            _ = await tally.bump()  // a default actor
            seen.thread(thread())
            async let child = thread()  // a child task
            seen.thread(await child)
            try start("200 OK", [("Content-Type", "text/plain")])
            var n = 0
            return AsyncBody(next: {
                seen.thread(thread())
                n += 1
                return n <= 2 ? "chunk \(n)\n" : nil
            })
        }
        let (outcome, t, log) = serveAsync(app)
        #expect(outcome == .completed)
        #expect(t.text == "chunk 1\nchunk 2\n")
        #expect(t.flushes == [true, true])
        #expect(log.isEmpty)
        #expect(seen.threadList.count == 7)
        #expect(seen.threadList.allSatisfy { $0 == thread() })
    }

    @Test func readyChunksGetContentLength() {
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return ["Hello ", "world!\n"]
        }
        let (outcome, t, _) = serveAsync(app)
        #expect(outcome == .completed)
        #expect(t.text == "Hello world!\n")
        #expect(t.header("Content-Length") == "13")
        #expect(t.flushes == [false, false])
    }

    @Test func aSyncApplicationIsAnAsyncOne() {
        struct Hello: Application {
            func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
                try startResponse("200 OK", [("Content-Type", "text/plain")])
                return ["Hello world!\n"]
            }
        }
        // Async middleware around a sync application.
        let (outcome, t, _) = serveAsync(ErrorHandler(Hello()))
        #expect(outcome == .completed)
        #expect(t.text == "Hello world!\n")
        #expect(t.header("Content-Length") == "13")
    }

    @Test func aWritingBodyIsSentWriteByWrite() {
        let closes = CloseCounter()
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return AsyncBody(onClose: closes.close) { write in
                for n in 1...3 {
                    try await write("line \(n)\n")
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
        }
        let (outcome, t, _) = serveAsync(app)
        #expect(outcome == .completed)
        #expect(t.text == "line 1\nline 2\nline 3\n")
        #expect(t.flushes == [true, true, true])
        #expect(closes.count == 1)
    }

    @Test func anAsyncSequenceIsABody() {
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            let (stream, continuation) = AsyncStream<Chunk>.makeStream()
            continuation.yield("a")
            continuation.yield("b")
            continuation.finish()
            return AsyncBody(stream)
        }
        let (outcome, t, _) = serveAsync(app)
        #expect(outcome == .completed)
        #expect(t.text == "ab")
    }

    @Test func throwingBeforeTheHeadIsA500() {
        struct Boom: Error {}
        let closes = CloseCounter()
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return AsyncBody(next: {
                try await Task.sleep(for: .milliseconds(1))
                throw Boom()
            }, onClose: closes.close)
        }
        let (outcome, t, log) = serveAsync(app)
        #expect(outcome == .failed(status: 500, headersSent: false))
        #expect(t.head == nil)
        #expect(closes.count == 1)
        #expect(log.count == 1 && log[0].contains("Boom"))
    }

    @Test func throwingInsideTheBodyAfterBytesCutsTheResponse() {
        struct Boom: Error {}
        let closes = CloseCounter()
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            var n = 0
            return AsyncBody(next: {
                n += 1
                if n == 2 { throw Boom() }
                return "first"
            }, onClose: closes.close)
        }
        let (outcome, t, log) = serveAsync(app)
        #expect(outcome == .failed(status: 500, headersSent: true))
        #expect(t.text == "first")
        #expect(closes.count == 1)
        #expect(log.count == 1 && log[0].contains("after the response started"))
    }

    @Test func aClientThatLeavesCancelsTheTask() {
        let seen = Seen()
        let closes = CloseCounter()
        let transport = RecordingTransport()
        transport.failAfterWrites = 1
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return AsyncBody(onClose: closes.close) { write in
                try await write("one\n")
                do {
                    try await write("two\n")
                } catch {
                    seen.event("write failed, cancelled: \(Task.isCancelled)")
                }
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch is CancellationError {
                    seen.event("sleep cancelled")
                }
                try await write("three\n")  // throws: cancelled
            }
        }
        let (outcome, t, _) = serveAsync(app, transport: transport)
        #expect(outcome == .clientDisconnected)
        #expect(t.text == "one\n")
        #expect(seen.eventList == ["write failed, cancelled: true", "sleep cancelled"])
        #expect(closes.count == 1)
    }

    @Test func noProgressForTheTimeoutCancelsTheTask() {
        let seen = Seen()
        let app = AsyncApp { _, start in
            do {
                try await Task.sleep(for: .seconds(30))
            } catch {
                seen.event("cancelled")
                throw error
            }
            try start("200 OK", [])
            return []
        }
        let clock = ContinuousClock()
        let began = clock.now
        var timedOut = false
        let (outcome, t, log) = serveAsync(app, timeout: .milliseconds(200), timedOut: &timedOut)
        #expect(timedOut)
        // It ended within its grace, on this thread: its cleanup ran here.
        #expect(outcome == .failed(status: 500, headersSent: false))
        #expect(t.head == nil)
        #expect(seen.eventList == ["cancelled"])
        #expect(log == ["SWGI application test stopped: its task was cancelled"])
        #expect(clock.now - began < .seconds(5))
    }

    @Test func aTaskThatIgnoresCancellationIsLeftBehind() async throws {
        let seen = Seen()
        let app = AsyncApp { _, start in
            // Waits for something that cancellation does not end.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let box = UncheckedBox(done)
                var thread = pthread_t()
                let arg = Unmanaged.passRetained(Holder(box)).toOpaque()
                pthread_create(&thread, nil, { arg in
                    let holder = Unmanaged<Holder<UncheckedBox<CheckedContinuation<Void, Never>>>>.fromOpaque(arg!)
                        .takeRetainedValue()
                    usleep(3_000_000)
                    holder.value.value.resume()
                    return nil
                }, arg)
                pthread_detach(thread)
            }
            seen.event("finished elsewhere")
            try start("200 OK", [])
            return []
        }
        var timedOut = false
        let (outcome, _, _) = serveAsync(app, timeout: .milliseconds(100), timedOut: &timedOut)
        #expect(timedOut)
        #expect(outcome == nil)
        for _ in 0..<800 where seen.eventList.isEmpty {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(seen.eventList == ["finished elsewhere"])
    }

    @Test func progressKeepsTheTimeoutAway() {
        // Eight pauses of 150 ms: 1.2 s in all, more than the 1 s timeout,
        // but each far shorter (room for a loaded machine).
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            var n = 0
            return AsyncBody(next: {
                n += 1
                if n > 8 { return nil }
                try await Task.sleep(for: .milliseconds(150))
                return "."
            })
        }
        let (outcome, t, _) = serveAsync(app, timeout: .seconds(1))
        #expect(outcome == .completed)
        #expect(t.text == "........")
    }

    @Test func inputHasAsyncReads() {
        let app = AsyncApp { environ, start in
            let first = try await environ.input.readLine()
            let rest = try await environ.input.read()
            try start("200 OK", [("Content-Type", "text/plain")])
            return [Chunk(first ?? []), "|", Chunk(rest)]
        }
        let (outcome, t, _) = serveAsync(app, method: "POST", input: Array("line 1\nthe rest".utf8))
        #expect(outcome == .completed)
        #expect(t.text == "line 1\n|the rest")
    }

    /// A read from a task on another thread (here a detached one) is made on
    /// the request's thread, as the host's state requires.
    @Test func readsHopToTheRequestThread() {
        final class Source: InputSource, @unchecked Sendable {
            var bytes: [UInt8] = [1, 2, 3]
            var threads: [UInt] = []
            var requestExecutor: RequestExecutor?
            func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
                threads.append(thread())
                let n = min(buffer.count, bytes.count)
                buffer.copyBytes(from: bytes.prefix(n))
                bytes.removeFirst(n)
                return n
            }
        }
        let source = Source()
        let executor = RequestExecutor()
        source.requestExecutor = executor
        let input = UncheckedBox(RequestInput(source: source))
        let seen = Seen()
        let read = executor.run { () async -> [UInt8] in
            await Task.detached {
                seen.thread(thread())
                return (try? await input.value.read(3)) ?? []
            }.value
        }
        executor.shutdown()
        #expect(read == [1, 2, 3])
        #expect(source.threads == [thread()])
        #expect(seen.threadList.count == 1 && seen.threadList[0] != thread())
    }

    @Test func aCancelledRunDoesNotCancelTheNext() {
        // A run whose task is cancelled (the client went away) while it
        // still runs from its start on this thread sees it at once; the runs
        // after it are not cancelled.
        let executor = RequestExecutor()
        defer { executor.shutdown() }
        #expect(executor.run { () async -> Bool in Task.isCancelled } == false)
        let cancelled = executor.run { () async -> Bool in
            executor.cancel()
            return Task.isCancelled
        }
        #expect(cancelled == true)
        #expect(executor.run { () async -> Bool in Task.isCancelled } == false)
        #expect(executor.run { () async -> Bool in Task.isCancelled } == false)
    }

    @Test func aCancelFromAnotherThreadReachesATaskStillInItsStart() {
        // The task runs from its start on this thread, before run() has its
        // handle; a cancel from another thread then is kept and reaches the
        // task when it first waits.
        let executor = RequestExecutor()
        defer { executor.shutdown() }
        let clock = ContinuousClock()
        let began = clock.now
        let cancelled = executor.run(timeout: .seconds(30)) { () async -> Bool in
            var thread = pthread_t()
            let arg = Unmanaged.passRetained(Holder(executor)).toOpaque()
            pthread_create(&thread, nil, { arg in
                Unmanaged<Holder<RequestExecutor>>.fromOpaque(arg!).takeRetainedValue().value.cancel()
                return nil
            }, arg)
            pthread_join(thread, nil)
            do {
                try await Task.sleep(for: .seconds(10))
                return false
            } catch {
                return Task.isCancelled
            }
        }
        #expect(cancelled == true)
        #expect(clock.now - began < .seconds(5))
        #expect(executor.run { () async -> Bool in Task.isCancelled } == false)
    }

    @Test func asyncReadsThrowOnceCancelled() {
        let seen = Seen()
        let app = AsyncApp { environ, start in
            withUnsafeCurrentTask { $0?.cancel() }
            do {
                _ = try await environ.input.read(1)
            } catch is CancellationError {
                seen.event("read cancelled")
            }
            try start("204 No Content", [])
            return []
        }
        let (outcome, _, _) = serveAsync(app, method: "POST", input: [1, 2, 3])
        #expect(outcome == .completed)
        #expect(seen.eventList == ["read cancelled"])
    }

    @Test func contentLengthIsEnforcedForWritingBodies() {
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
            return AsyncBody { write in
                try await write("ab")
                try await write("cd")
                try await write("ef")
            }
        }
        let (outcome, t, log) = serveAsync(app)
        #expect(outcome == .completed)
        #expect(t.text == "abc")
        #expect(log.count == 1 && log[0].contains("more bytes than its Content-Length"))
    }

    @Test func theValidatorChecksAsyncApplications() {
        let violations = Lines()
        let app = AsyncApp { _, start in
            try start("200 OK", [])  // no Content-Type
            return AsyncBody(next: { nil })
        }
        let server = ["SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"]
        let (outcome, _, _) = serveAsync(Validator(app, onViolation: { violations.append($0) }), variables: server)
        #expect(outcome == .completed)
        #expect(violations.lines == ["no Content-Type header in a 200 response"])
    }

    @Test func theErrorHandlerCatchesAnAsyncBody() {
        struct Boom: Error {}
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return AsyncBody(next: { throw Boom() })
        }
        let (outcome, t, log) = serveAsync(ErrorHandler(app))
        #expect(outcome == .completed)
        #expect(t.head?.status == 500)
        #expect(t.text == "Internal Server Error")
        #expect(log.contains { $0.contains("ErrorHandler: ") })
    }

    @Test func middlewareCanIterateAWritingBody() {
        let app = AsyncApp { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return AsyncBody { write in
                try await write("a")
                try await write("b")
            }
        }
        let upper = AsyncApp { environ, start in
            let body = try await app(environ, start)
            return body.map { Chunk(String(decoding: $0.bytes, as: UTF8.self).uppercased()) }
        }
        let (outcome, t, _) = serveAsync(upper)
        #expect(outcome == .completed)
        #expect(t.text == "AB")
    }

    @Test func blockingApplicationServesAnAsyncOneToASyncServer() {
        let app = AsyncApp { _, start in
            try await Task.sleep(for: .milliseconds(1))
            try start("200 OK", [("Content-Type", "text/plain")])
            var n = 0
            return AsyncBody(next: {
                n += 1
                return n <= 2 ? "\(n)" : nil
            })
        }
        let (outcome, t, _) = serve(BlockingApplication(app))
        #expect(outcome == .completed)
        #expect(t.text == "12")
    }

    @Test func theTestClientRunsAsyncApplications() {
        let app = AsyncApp { environ, start in
            try await Task.sleep(for: .milliseconds(1))
            try start("200 OK", [("Content-Type", "text/plain")])
            return ["you asked for \(environ.pathInfo)"]
        }
        let response = TestClient(app).get("/x")
        #expect(response.status == 200)
        #expect(response.text == "you asked for /x")
        #expect(response.violations.isEmpty)
    }
}
