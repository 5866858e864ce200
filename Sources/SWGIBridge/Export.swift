internal import _Concurrency
internal import CSWGIABI
internal import SWGIStatic
@_exported public import SWGI

/// Makes `app` servable by mod_swgi (and by any host of the SWGI C ABI).
///
/// An application library exports each application from one entry point,
/// named `swgi_entry_` + the name `SWGIEntryPoint` selects (`application`
/// unless configured otherwise):
///
/// ```swift
/// import SWGIBridge
///
/// @c(swgi_entry_application)
/// public func entry() -> UnsafeRawPointer { exportApplication(Hello()) }
/// ```
///
/// The host calls the entry point once per process and keeps the table it
/// returns for the life of the process; the application is retained for as
/// long.
public func exportApplication<A: Application>(_ app: A) -> UnsafeRawPointer {
    makeTable(SyncApplicationBox(app))
}

/// Makes an async application servable: each request runs as a task whose
/// code runs on the host's request thread (see ``RequestExecutor``), cancelled
/// when the client goes away or when nothing happens for the host's timeout
/// (Apache's `Timeout`).
///
/// ```swift
/// @c(swgi_entry_application)
/// public func entry() -> UnsafeRawPointer { exportApplication(Slow()) }
/// ```
///
/// A host that runs an event loop (swgi-serve) calls `handle_async`
/// instead: the task then runs on that loop, and nothing blocks.
public func exportApplication<A: AsyncApplication>(_ app: A) -> UnsafeRawPointer {
    makeTable(AsyncApplicationBox(AsyncGateway(app)))
}

private func makeTable(_ application: ApplicationBox) -> UnsafeRawPointer {
    // Retained here, for the life of the process: the table is never freed.
    let box = Unmanaged.passRetained(application)
    let table = UnsafeMutablePointer<swgi_app_v1>.allocate(capacity: 1)
    table.initialize(to: swgi_app_v1(
        abi_version: SWGI_ABI_VERSION,
        size: UInt32(MemoryLayout<swgi_app_v1>.size),
        swgi_version: libraryVersionCString,
        context: box.toOpaque(),
        handle: handleRequest,
        flags: SWGI_APP_LAZY_ENVIRON,
        handle_async: application.servesOnLoop ? handleRequestOnLoop : nil
    ))
    return UnsafeRawPointer(table)
}

/// The application, typed away behind the methods the C entries call.
///
/// Every request of every thread goes through this one object, which lives
/// as long as the process: the entries borrow it, and its subclasses hold
/// the application (or its gateway) in a stored `let`, so that a request
/// does not write to it. (A box of closures had a closure context retained
/// and released around each call: two atomic writes a request to a line
/// that every request thread of a child shares. An async request's shared
/// state still retains the gateway: held `unowned(unsafe)`, it was retained
/// on each load instead, the same count.)
class ApplicationBox {
    /// Whether `handle_async` is offered: an async application's box.
    var servesOnLoop: Bool { false }

    /// `handle`.
    func serve(_ request: UnsafePointer<swgi_request_v1>) -> Int32 { 500 }

    /// `handle_async`, for an async application.
    func serveOnLoop(_ request: UnsafePointer<swgi_request_v1>, _ done: DoneFunction) -> Int32 { 500 }
}

final class SyncApplicationBox<A: Application>: ApplicationBox {
    let app: A

    init(_ app: A) {
        self.app = app
    }

    override func serve(_ request: UnsafePointer<swgi_request_v1>) -> Int32 {
        SWGIBridge.serve(app, request)
    }
}

final class AsyncApplicationBox<A: AsyncApplication>: ApplicationBox {
    let gateway: AsyncGateway<A>

    init(_ gateway: AsyncGateway<A>) {
        self.gateway = gateway
    }

    override var servesOnLoop: Bool { true }

    override func serve(_ request: UnsafePointer<swgi_request_v1>) -> Int32 {
        serveAsync(gateway, request)
    }

    override func serveOnLoop(_ request: UnsafePointer<swgi_request_v1>, _ done: DoneFunction) -> Int32 {
        serveOnEventLoop(gateway, request, done)
    }
}

/// The host's `done` of handle_async.
typealias DoneFunction = @convention(c) (UnsafeMutableRawPointer?, Int32) -> Void

/// `swgi_app_v1.handle`: `context` is the box passed retained by
/// exportApplication, borrowed here (never released).
private let handleRequest: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<swgi_request_v1>?) -> Int32 = {
    context, request in
    guard let context, let request else { return 500 }
    return Unmanaged<ApplicationBox>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.serve(request) }
}

/// `swgi_app_v1.handle_async`, for an async application's box.
private let handleRequestOnLoop: @convention(c) (
    UnsafeMutableRawPointer?, UnsafePointer<swgi_request_v1>?, DoneFunction?
) -> Int32 = { context, request, done in
    guard let context, let request, let done else { return 500 }
    return Unmanaged<ApplicationBox>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.serveOnLoop(request, done) }
}

// Written once, never mutated or freed: safe to share across threads.
nonisolated(unsafe) private let libraryVersionCString: UnsafePointer<CChar> = {
    let utf8 = Array(SWGI.libraryVersion.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    p.initialize(from: utf8, count: utf8.count)
    return UnsafePointer(p)
}()

/// Serves one request: the environ from the host's pairs, the response
/// through the host's callbacks, and the outcome as the ABI's return value.
func serve<A: Application>(_ app: A, _ request: UnsafePointer<swgi_request_v1>) -> Int32 {
    let req = request.pointee
    guard let callbacks = req.callbacks else { return 500 }
    var host = HostConnection.forRequest(req, callbacks: callbacks)
    let result = serve(app, req, host)
    HostConnection.recycle(&host)
    return result
}

/// The request's own part: its environ ends here, before the connection is
/// offered for reuse (not inlined, so that nothing of it outlives the call).
@inline(never)
private func serve<A: Application>(_ app: A, _ req: swgi_request_v1, _ host: HostConnection) -> Int32 {
    var environ = requestEnviron(req, host)
    let outcome = validates(req, environ)
        ? runValidated(app, environ, host)
        : Gateway.run(app, environ: environ, transport: host, reporter: host)
    endRequest(&environ, host)
    return handleResult(outcome)
}

/// The validator's path, a function of its own: serve's frame then holds no
/// Validator<A>, whose metadata would be looked up at run time on every
/// request.
@inline(never)
private func runValidated<A: Application>(_ app: A, _ environ: Environ, _ host: HostConnection) -> GatewayOutcome {
    Gateway.run(Validator(app), environ: environ, transport: host, reporter: host)
}

/// Serves one request to an async application: the same environ and
/// response as ``serve(_:_:)``, the application run as a task on this thread.
func serveAsync(_ gateway: any AsyncGatewayCall, _ request: UnsafePointer<swgi_request_v1>) -> Int32 {
    guard let callbacks = request.pointee.callbacks else { return 500 }
    var host = HostConnection.forRequest(request.pointee, callbacks: callbacks)
    let result = serveAsync(gateway, request, host)
    HostConnection.recycle(&host)
    return result
}

/// The request's own part (see `serve`): a task left behind at a timeout
/// still holds the connection, which is then not reused.
@inline(never)
private func serveAsync(_ gateway: any AsyncGatewayCall, _ request: UnsafePointer<swgi_request_v1>,
                        _ host: HostConnection) -> Int32 {
    let req = request.pointee
    let executor = RequestExecutor.forCurrentThread()
    host.requestExecutor = executor
    // The task has the request while it runs; this thread looks at it again
    // only after the task has finished or been left behind. (No local holds
    // its environ: the shared object must be its only owner outside the task.)
    let shared = SharedRequest(gateway, requestEnviron(req, host), host, endingRunOf: executor)
    shared.validating = validates(req, shared.environ)
    let timeout = requestTimeout(request)
    // (An operation that captures one object has it for its context: no
    // allocation a request for the closure. The request tells the executor
    // when it has ended, from the gateway's last lines: see
    // `Gateway.run(async:...:ending:)`. The closure itself still switches
    // back after its call, which goes through a protocol: the compiler keeps
    // that switch even with nothing after it.)
    let finished = executor.run(timeout: timeout, endingItself: { await shared.run() })
    if executor.timedOut, let timeout {
        host.log(.error, "SWGI application \(host.applicationName) made no progress for \(timeout.components.seconds) s (Timeout): its task was cancelled and the request ended")
    }
    endRequest(&shared.environ, host)
    // A timeout is a 504 (the host cuts the connection instead when
    // something was sent).
    guard finished, let outcome = shared.outcome else { return 504 }
    if executor.timedOut, case .failed = outcome { return 504 }
    return handleResult(outcome)
}

/// Serves one request to an async application on the host's event loop
/// (handle_async): the task's jobs go to the host's `schedule`, its reads
/// and writes await the host's readiness instead of blocking, and `done`
/// tells the host how it ended. Returns at once.
func serveOnEventLoop(_ gateway: any AsyncGatewayCall, _ request: UnsafePointer<swgi_request_v1>,
                      _ done: DoneFunction) -> Int32 {
    let req = request.pointee
    guard let callbacks = req.callbacks, HostConnection.servesOnEventLoop(callbacks) else { return 500 }
    let host = HostConnection(req, callbacks: callbacks, onEventLoop: true)
    let executor = RequestExecutor(schedule: { executor, job in host.schedule(job, on: executor) })
    host.requestExecutor = executor
    let shared = SharedRequest(gateway, requestEnviron(req, host), host, endingRunOf: nil)
    shared.validating = validates(req, shared.environ)
    // The host's pointer and its done: plain C values, used once, at the end.
    let ending = UncheckedBox((done, req.host))
    executor.start {
        await shared.run()
        let outcome = shared.outcome!
        endRequest(&shared.environ, host)
        // Nothing more goes to the host's loop: what the task leaves behind
        // (a task of its own) runs on the global executor.
        executor.shutdown()
        ending.value.0(ending.value.1, handleResult(outcome))
    }
    return SWGI_OK
}

/// Whether the request runs in the validator: `SetEnv SWGI_VALIDATE 1`
/// checks both sides of every exchange (see Validator). A host that has
/// looked the variable up says so in the request's flags (mod_swgi does:
/// one lookup fewer a request); else it is asked for.
private func validates(_ req: swgi_request_v1, _ environ: Environ) -> Bool {
    if req.flags & SWGI_FLAG_VALIDATE_KNOWN != 0 {
        return req.flags & SWGI_FLAG_VALIDATE != 0
    }
    return environ["SWGI_VALIDATE"] == "1"
}

/// An async application, typed away once, when it is exported: a request
/// reaches it through this one reference, held by its ``SharedRequest``.
protocol AsyncGatewayCall: AnyObject, Sendable {
    /// Runs the application for the request through the gateway (in the
    /// validator when the request says so); the request is told how it
    /// ended (``SharedRequest/ended(_:)``) before this returns.
    func run(_ request: SharedRequest) async
}

final class AsyncGateway<A: AsyncApplication>: AsyncGatewayCall {
    let app: A

    init(_ app: A) {
        self.app = app
    }

    func run(_ request: SharedRequest) async {
        let environ = request.environ
        if request.validating {
            await runValidated(app, environ, request)
        } else {
            await Gateway.run(async: app, environ: environ, transport: request.host, reporter: request.host,
                              ending: request)
        }
    }
}

/// The validator's path, a function of its own: the unvalidated request's
/// task frame then holds no Validator<A> (whose metadata is looked up at run
/// time).
@inline(never)
private func runValidated<A: AsyncApplication>(_ app: A, _ environ: Environ,
                                               _ request: SharedRequest) async {
    await Gateway.run(async: Validator(app), environ: environ, transport: request.host, reporter: request.host,
                      ending: request)
}

/// The request's environ over the host's variables (the host is their source).
private func requestEnviron(_ req: swgi_request_v1, _ host: HostConnection) -> Environ {
    Environ(
        source: host,
        host: host,
        multithread: req.flags & SWGI_FLAG_MULTITHREAD != 0,
        multiprocess: req.flags & SWGI_FLAG_MULTIPROCESS != 0,
        runOnce: req.flags & SWGI_FLAG_RUN_ONCE != 0,
        fileWrapper: posixFileWrapper
    )
}

/// Ends the request on the host's side: an environ the application kept gets
/// its own copy of the host's values, then nothing more reaches the host.
private func endRequest(_ environ: inout Environ, _ host: HostConnection) {
    if environ.sharedSource() != nil {
        host.keepAfterRequest()
    }
    host.close()
}

/// The ABI's return value for how the request ended.
private func handleResult(_ outcome: GatewayOutcome) -> Int32 {
    switch outcome {
    case .completed, .clientDisconnected:
        return SWGI_DONE
    case .failed(let status, _):
        return Int32(status)
    }
}

/// The host's limit on a request without progress, when it sets one.
private func requestTimeout(_ request: UnsafePointer<swgi_request_v1>) -> Duration? {
    let end = MemoryLayout<swgi_request_v1>.offset(of: \swgi_request_v1.timeout_usec)! + MemoryLayout<Int64>.size
    guard Int(request.pointee.size) >= end, request.pointee.timeout_usec > 0 else { return nil }
    return .microseconds(request.pointee.timeout_usec)
}

/// What the request's task shares with the thread that serves it,
/// which uses it only before the task starts and after it has finished (or
/// was left behind at a timeout, when the host is closed under its lock).
final class SharedRequest: GatewayEnding, @unchecked Sendable {
    let gateway: any AsyncGatewayCall
    let host: HostConnection
    /// The executor whose run the task is, told when the request has ended
    /// (none for an event loop's).
    let executor: RequestExecutor?
    @exclusivity(unchecked) var environ: Environ
    @exclusivity(unchecked) var validating = false
    /// How the task ended, once it has.
    @exclusivity(unchecked) var outcome: GatewayOutcome?

    init(_ gateway: any AsyncGatewayCall, _ environ: Environ, _ host: HostConnection,
         endingRunOf executor: RequestExecutor?) {
        self.gateway = gateway
        self.environ = environ
        self.host = host
        self.executor = executor
    }

    /// The request's task: the application through the gateway, which
    /// calls ``ended(_:)`` last.
    func run() async {
        await gateway.run(self)
    }

    func ended(_ outcome: GatewayOutcome) {
        self.outcome = outcome
        executor?.operationEnded()
    }
}
