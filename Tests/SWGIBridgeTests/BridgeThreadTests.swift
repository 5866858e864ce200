// The bridge (SWGIBridge) driven through the C ABI by a host written like
// mod_swgi's: the request thread blocks in handle() while the application's
// task, its timers and its own threads call back. The host keeps its state
// in plain fields with no lock of its own, as Apache's request state is, so
// scripts/test's ThreadSanitizer run reports any call the bridge fails to
// serialize; the host also counts calls that overlap or come after handle()
// returned (the ABI forbids both). The applications are the integration
// tests' own (Tests/Apps), called through their entry points, and one of
// this file's, which outlives its request.
import CSWGIABI
import Dispatch
import SWGIBridge
import SWGITestApps
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One request's host side.
final class FakeHost: @unchecked Sendable {
    /// The environ's pairs, valid for the host's life (longer than handle()).
    let pairs: UnsafeMutableBufferPointer<swgi_pair>
    let input: [UInt8]
    /// Writes that succeed before the client "goes away" (nil: never).
    let writesBeforeGone: Int?

    // Touched only from callbacks, which the bridge must serialize.
    var inputOffset = 0
    var status: Int32 = 0
    var started = false
    var writes = 0
    var body: [UInt8] = []
    var logs: [String] = []

    let active = Atomic<Int>(0)
    let overlapping = Atomic<Int>(0)
    let afterEnd = Atomic<Int>(0)
    let ended = Atomic<Bool>(false)

    init(environ: [(String, String)], input: [UInt8], writesBeforeGone: Int?) {
        pairs = .allocate(capacity: environ.count)
        for (i, (name, value)) in environ.enumerated() {
            pairs[i] = swgi_pair(name: Self.bytes(name), value: Self.bytes(value))
        }
        self.input = input
        self.writesBeforeGone = writesBeforeGone
    }

    deinit {
        for pair in pairs {
            free(UnsafeMutableRawPointer(mutating: pair.name.data))
            free(UnsafeMutableRawPointer(mutating: pair.value.data))
        }
        pairs.deallocate()
    }

    private static func bytes(_ s: String) -> swgi_bytes {
        swgi_bytes(data: UnsafePointer(strdup(s)!), len: s.utf8.count)
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// Runs one callback, counting what the ABI forbids.
    static func call<R>(_ host: UnsafeMutableRawPointer?, _ body: (FakeHost) -> R) -> R {
        let h = Unmanaged<FakeHost>.fromOpaque(host!).takeUnretainedValue()
        if h.ended.load(ordering: .acquiring) { h.afterEnd.add(1, ordering: .relaxed) }
        if h.active.add(1, ordering: .acquiringAndReleasing).oldValue != 0 {
            h.overlapping.add(1, ordering: .relaxed)
        }
        defer { h.active.subtract(1, ordering: .acquiringAndReleasing) }
        return body(h)
    }
}

nonisolated(unsafe) let fakeCallbacks: UnsafeMutablePointer<swgi_host_v1> = {
    let table = UnsafeMutablePointer<swgi_host_v1>.allocate(capacity: 1)
    table.initialize(to: swgi_host_v1(
        size: UInt32(MemoryLayout<swgi_host_v1>.size),
        read: { host, buf, len in
            FakeHost.call(host) { h in
                let n = min(len, h.input.count - h.inputOffset)
                h.input.withUnsafeBytes { raw in
                    UnsafeMutableRawPointer(buf!).copyMemory(from: raw.baseAddress! + h.inputOffset, byteCount: n)
                }
                h.inputOffset += n
                return Int64(n)
            }
        },
        start_response: { host, status, _, _, _ in
            FakeHost.call(host) { h in
                h.status = status
                h.started = true
                return SWGI_OK
            }
        },
        write: { host, data, len, _ in
            FakeHost.call(host) { h in
                guard h.started else { return SWGI_ESTATE }
                if let limit = h.writesBeforeGone, h.writes >= limit { return SWGI_ECLIENT }
                h.writes += 1
                h.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: len))
                return SWGI_OK
            }
        },
        log: { host, _, message, len in
            FakeHost.call(host) { h in
                h.logs.append(String(decoding: UnsafeRawBufferPointer(start: message, count: len), as: UTF8.self))
            }
        },
        send_file: nil,
        environ_get: { host, name, len, value in
            FakeHost.call(host) { h in
                for pair in h.pairs where pair.name.len == len && memcmp(pair.name.data, name!, len) == 0 {
                    value!.pointee = pair.value
                    return 1
                }
                return 0
            }
        },
        environ_all: { host, pairs, count in
            FakeHost.call(host) { h in
                pairs!.pointee = UnsafePointer(h.pairs.baseAddress)
                count!.pointee = h.pairs.count
            }
        },
        // A request thread that blocks in handle(), as Apache's.
        schedule: nil, wait_readable: nil, wait_writable: nil
    ))
    return table
}()

/// The applications' tables, each asked for once, as a host does.
nonisolated(unsafe) let asyncCasesApp = asyncCases().assumingMemoryBound(to: swgi_app_v1.self)
nonisolated(unsafe) let keptApp = kept().assumingMemoryBound(to: swgi_app_v1.self)
nonisolated(unsafe) let leftBehindApp = exportApplication(LeftBehind()).assumingMemoryBound(to: swgi_app_v1.self)

/// Waits for something cancellation does not end (2 s: past the timeout
/// and the second the bridge then gives the task), then goes on as if the
/// request were still running: what it gets is recorded in `events`.
struct LeftBehind: AsyncApplication {
    static let events = Mutex<[String]>([])

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + 2) { done.resume() }
        }
        let path = environ.pathInfo
        let read = (try? await environ.input.read()).map { "read \($0.count) bytes" } ?? "read refused"
        Self.events.withLock { $0 += ["path \(path)", read] }
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return AsyncBody { write in
            do {
                try await write("too late\n")
                Self.events.withLock { $0.append("written") }
            } catch {
                Self.events.withLock { $0.append("write refused") }
            }
        }
    }
}

/// Serves one request on this thread, as mod_swgi's handler does.
func serve(_ app: UnsafePointer<swgi_app_v1>, query: String, method: String = "GET", input: [UInt8] = [],
           timeout: Duration? = nil, writesBeforeGone: Int? = nil) -> (rc: Int32, host: FakeHost) {
    let host = FakeHost(environ: [
        ("REQUEST_METHOD", method), ("SCRIPT_NAME", "/app"), ("PATH_INFO", "/path"), ("QUERY_STRING", query),
        ("SERVER_NAME", "127.0.0.1"), ("SERVER_PORT", "80"), ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("CONTENT_LENGTH", String(input.count)), ("PATH_TRANSLATED", "/srv/path"),
    ], input: input, writesBeforeGone: writesBeforeGone)
    let micros = timeout.map { $0.components.seconds * 1_000_000 + $0.components.attoseconds / 1_000_000_000_000 } ?? 0
    var request = swgi_request_v1(
        size: UInt32(MemoryLayout<swgi_request_v1>.size),
        flags: SWGI_FLAG_MULTITHREAD | SWGI_FLAG_MULTIPROCESS | SWGI_FLAG_VALIDATE_KNOWN,
        host: Unmanaged.passUnretained(host).toOpaque(), callbacks: UnsafePointer(fakeCallbacks),
        environ: nil, environ_count: 0, timeout_usec: micros)
    let rc = app.pointee.handle(app.pointee.context, &request)
    host.ended.store(true, ordering: .releasing)
    return (rc, host)
}

/// Runs `body(i)` for i in 0..<count, each on a thread of its own, and waits for all.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job { let run: () -> Void; init(_ run: @escaping () -> Void) { self.run = run } }
    var threads: [pthread_t] = []
    for i in 0..<count {
        let job = Unmanaged.passRetained(Job { body(i) }).toOpaque()
        var thread = pthread_t()
        precondition(pthread_create(&thread, nil, { arg in
            Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, job) == 0)
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// What the host saw of what the ABI forbids: calls that overlapped, calls
/// after handle() returned.
func abiViolations(_ host: FakeHost) -> [String] {
    var seen: [String] = []
    let overlapping = host.overlapping.load(ordering: .relaxed), afterEnd = host.afterEnd.load(ordering: .relaxed)
    if overlapping != 0 { seen.append("\(overlapping) overlapping host calls") }
    if afterEnd != 0 { seen.append("\(afterEnd) host calls after handle() returned") }
    return seen
}

func expectABIKept(_ host: FakeHost, _ what: String) {
    #expect(abiViolations(host) == [], "\(what)")
}

@Suite struct BridgeThreadTests {
    /// Async requests on eight request threads at once: timers, child tasks
    /// and actors resume elsewhere and come back to the request's thread;
    /// async reads of the body; a body that throws after its first chunk.
    @Test func asyncRequestsOnManyThreads() {
        let failures = Mutex<[String]>([])
        // Two reads of 64 KiB and a short one.
        let input = (0..<140_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let sum = input.reduce(UInt32(0)) { $0 &+ UInt32($1) }
        onThreads(8) { t in
            for n in 0..<6 {
                let what = "thread \(t), request \(n)"
                func fail(_ reason: String) { failures.withLock { $0.append("\(what): \(reason)") } }
                let host: FakeHost
                switch n % 4 {
                case 0:
                    let r = serve(asyncCasesApp, query: "case=threads")
                    host = r.host
                    if r.rc != SWGI_DONE || !host.text.hasPrefix("same_thread=true") { fail("threads: \(r.rc) \(host.text)") }
                case 1:
                    let r = serve(asyncCasesApp, query: "case=echo", method: "POST", input: input)
                    host = r.host
                    if r.rc != SWGI_DONE || host.text != "bytes=140000 sum=\(sum)\n" { fail("echo: \(r.rc) \(host.text)") }
                case 2:
                    let r = serve(asyncCasesApp, query: "case=sleep&ms=5")
                    host = r.host
                    if r.rc != SWGI_DONE || host.text != "slept 5 ms\n" { fail("sleep: \(r.rc) \(host.text)") }
                default:
                    let r = serve(asyncCasesApp, query: "case=throw-body")
                    host = r.host
                    if r.rc != 500 || host.text != "first chunk\n"
                        || !host.logs.contains(where: { $0.contains("async failure inside the body") }) {
                        fail("throw-body: \(r.rc) \(host.text) \(host.logs)")
                    }
                }
                abiViolations(host).forEach(fail)
            }
        }
        #expect(failures.withLock { $0 } == [])
    }

    /// A task that awaits forever is cancelled at the host's timeout: 504,
    /// a line that says why, and no call after handle() returned.
    @Test func theTimeoutCancelsAHangingTask() {
        let (rc, host) = serve(asyncCasesApp, query: "case=hang", timeout: .milliseconds(100))
        #expect(rc == 504)
        #expect(host.logs.contains { $0.contains("made no progress") })
        #expect(host.logs.contains { $0.contains("AsyncCases: hang cancelled") })
        expectABIKept(host, "hang")
    }

    /// The client goes away in the middle of a writing body: the task sees
    /// itself cancelled and the request ends as a disconnect.
    @Test func aClientThatLeavesCancelsTheWritingTask() {
        let (rc, host) = serve(asyncCasesApp, query: "case=flood-write&mb=4", writesBeforeGone: 3)
        #expect(rc == SWGI_DONE)
        #expect(host.body.count == 3 * 64 * 1024)
        #expect(host.logs.contains { $0.contains("flood-write stopped after 3 chunks, cancelled=true") })
        expectABIKept(host, "flood-write")
    }

    /// A task that ignores cancellation outlives its request (504 at the
    /// timeout): what it does afterwards never reaches the host. Its environ
    /// answers from the bridge's copy; its read and write are refused.
    @Test func aTaskLeftBehindNeverReachesTheHost() async throws {
        let (rc, host) = serve(leftBehindApp, query: "", method: "POST", input: Array("body".utf8),
                               timeout: .milliseconds(100))
        #expect(rc == 504)
        #expect(host.logs.contains { $0.contains("made no progress") })
        // (Awaited, not slept: the task left behind runs on the global executor.)
        for _ in 0..<500 where LeftBehind.events.withLock({ $0.count }) < 3 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(LeftBehind.events.withLock { $0 } == ["path /path", "read refused", "write refused"])
        #expect(host.body.isEmpty)
        expectABIKept(host, "left behind")
    }

    /// A sync application reads the environ and the body on a thread of its
    /// own while the request runs; another keeps its environ, which a later
    /// request reads after the first has ended (from the bridge's copy,
    /// never from the host).
    @Test func environAndBodyFromOtherThreadsAndAfterTheRequest() {
        let (rc, host) = serve(keptApp, query: "thread", method: "POST", input: Array("abc".utf8))
        #expect(rc == SWGI_DONE)
        #expect(host.text == "/srv/path /path body=3\n")
        expectABIKept(host, "thread")

        let first = serve(keptApp, query: "keep")
        #expect(first.rc == SWGI_DONE && first.host.text == "kept\n")
        let later = serve(keptApp, query: "")
        #expect(later.rc == SWGI_DONE)
        #expect(later.host.text.hasPrefix("/srv/path\n/path\n-\n-\n"))
        expectABIKept(first.host, "keep")
        expectABIKept(later.host, "read kept")
    }
}
