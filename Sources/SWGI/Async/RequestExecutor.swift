public import _Concurrency
#if canImport(Glibc)
import Glibc
#endif

/// Runs an async request on the thread that serves it.
///
/// A server thread calls ``run(timeout:_:)``: the operation becomes a task
/// whose preferred executor is this one, and the thread runs the task's jobs
/// itself until the task finishes. Code of the task that is not isolated to
/// an actor of its own (the application, its async body, child tasks and
/// `async let`, default actors) runs on that thread, one job at a time; when
/// the task awaits something that completes elsewhere (a timer, another
/// executor), the thread sleeps until the continuation is enqueued here. So a
/// request costs no thread hop, and a host whose per-request state is not
/// thread-safe (Apache's pools and brigades) is only ever called from its own
/// thread.
///
/// When no job arrives for `timeout`, the task is cancelled (``timedOut``
/// is set) and given `grace` to end here, on the request's thread; a task
/// that ignores cancellation is left behind. Jobs enqueued while no run is
/// going on (a task that outlived its request, or was left behind) run on
/// the global concurrent executor.
///
/// A server thread reuses one executor for its requests
/// (``forCurrentThread()``); one that was left with a task behind is
/// retired (``shutdown()``) and replaced. Each run's task starts at once on
/// the calling thread (`Task.immediate`) and runs there until it first
/// waits for something that completes elsewhere: a request that never does
/// (most) queues no job at all.
///
/// A server that runs an event loop instead makes one executor per request
/// with ``init(schedule:)`` and starts the task with ``start(_:)``, which
/// returns at once: each job goes to `schedule`, which hands it to the loop,
/// and the loop runs it with ``runJob(_:)``. Nothing blocks; the task's code
/// still runs on the one thread that serves the request.
public final class RequestExecutor: TaskExecutor, @unchecked Sendable {
    /// The executor whose jobs this thread is running, if any: the request's,
    /// when called from its task on its thread.
    public static var current: RequestExecutor? {
        pthread_getspecific(runningKey).map { Unmanaged<RequestExecutor>.fromOpaque($0).takeUnretainedValue() }
    }

    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `lock` (so the runtime's exclusivity checks, a few hundred
    // instructions a request, are left out):
    @exclusivity(unchecked) private var jobs: [UnownedJob] = []
    @exclusivity(unchecked) private var head = 0
    @exclusivity(unchecked) private var finished = false
    @exclusivity(unchecked) private var accepting = false  // a run is going on
    @exclusivity(unchecked) private var retired = false    // shut down: no more runs
    @exclusivity(unchecked) private var task: Task<Void, any Error>?
    /// Cancelled before `task` was known (while it ran from its start).
    @exclusivity(unchecked) private var cancelRequested = false
    /// Whether the last run passed its timeout without progress (set by the
    /// thread that runs, read by it after).
    @exclusivity(unchecked) public private(set) var timedOut = false
    /// An event loop's executor: where jobs go (called under `lock`).
    private let schedule: (@Sendable (RequestExecutor, UnownedJob) -> Void)?

    public convenience init() {
        self.init(scheduler: nil)
    }

    /// An executor whose jobs an event loop runs: `schedule` is called with
    /// each job (on any thread) and must have the loop call ``runJob(_:)``
    /// with it soon. It is not called after ``shutdown()``: later jobs run
    /// on the global concurrent executor.
    public convenience init(schedule: @escaping @Sendable (RequestExecutor, UnownedJob) -> Void) {
        self.init(scheduler: schedule)
    }

    private init(scheduler: (@Sendable (RequestExecutor, UnownedJob) -> Void)?) {
        schedule = scheduler
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        jobs.reserveCapacity(4)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// This thread's executor: reused from its last request unless that one
    /// was retired.
    public static func forCurrentThread() -> RequestExecutor {
        if let stored = pthread_getspecific(threadKey) {
            let executor = Unmanaged<RequestExecutor>.fromOpaque(stored).takeUnretainedValue()
            if !executor.isRetired { return executor }
            Unmanaged<RequestExecutor>.fromOpaque(stored).release()
        }
        let executor = RequestExecutor()
        pthread_setspecific(threadKey, Unmanaged.passRetained(executor).toOpaque())
        return executor
    }

    private var isRetired: Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return retired
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        pthread_mutex_lock(lock)
        if !accepting {
            pthread_mutex_unlock(lock)
            globalConcurrentExecutor.enqueue(job)
            return
        }
        if let schedule {
            schedule(self, UnownedJob(job))
        } else {
            jobs.append(UnownedJob(job))
            pthread_cond_signal(condition)
        }
        pthread_mutex_unlock(lock)
    }

    /// Starts `operation` as a task whose jobs go to this executor's
    /// `schedule` (see ``init(schedule:)``) and returns at once. The task is
    /// the one ``cancel()`` cancels; ``shutdown()`` when the request is over.
    public func start(_ operation: sending @escaping () async -> Void) {
        precondition(schedule != nil, "RequestExecutor.start: only an executor made with init(schedule:) starts tasks")
        pthread_mutex_lock(lock)
        precondition(!retired && !accepting, "RequestExecutor.start: the executor is retired or already running")
        accepting = true
        pthread_mutex_unlock(lock)
        // (A Task<Void, any Error>, as `task` holds it: see run.)
        let task = Task<Void, any Error>(executorPreference: self) { () async throws in await operation() }
        pthread_mutex_lock(lock)
        self.task = task
        pthread_mutex_unlock(lock)
    }

    /// Runs one job that `schedule` was given, on the calling thread (the
    /// event loop's), as ``current``.
    public func runJob(_ job: UnownedJob) {
        asCurrent { job.runSynchronously(on: asUnownedTaskExecutor()) }
    }

    /// Runs `body` with this executor as ``current`` (restored after: runs
    /// nest when an async application is served through BlockingApplication).
    private func asCurrent<R>(_ body: () -> R) -> R {
        let outer = becomeCurrent()
        defer { pthread_setspecific(runningKey, outer) }
        return body()
    }

    /// Makes this executor the thread's ``current``; returns the one before,
    /// for the caller to restore.
    private func becomeCurrent() -> UnsafeMutableRawPointer? {
        let outer = pthread_getspecific(runningKey)
        pthread_setspecific(runningKey, Unmanaged.passUnretained(self).toOpaque())
        return outer
    }

    /// Runs `operation` as a task on this thread and returns its result.
    /// When the task makes no progress for `timeout`, it is cancelled and has
    /// `grace` to finish; `nil` if it does not (this executor is then shut
    /// down and the task left behind). Blocks the calling thread, which must
    /// not be one of Swift concurrency's own.
    public func run<T>(timeout: Duration? = nil, grace: Duration = .seconds(1),
                       _ operation: sending @escaping () async -> T) -> T? {
        let result = ResultSlot<T>()
        let finished = run(timeout: timeout, grace: grace, endingItself: { [self] in
            result.value = await operation()
            operationEnded()
        })
        return finished ? result.value : nil
    }

    /// ``run(timeout:grace:_:)`` for an operation that leaves its result and
    /// reports its end itself: it calls ``operationEnded()`` as the last
    /// thing it does. True when it finished, false when it was left behind.
    /// Not generic, so a server's request pays no lookup of generic metadata.
    /// (The task's closure then has nothing to run after the operation
    /// returns, and no switch back to this executor: see
    /// `Gateway.run(async:...:ending:)`.)
    package func run(timeout: Duration?, grace: Duration = .seconds(1),
                     endingItself operation: sending @escaping () async -> Void) -> Bool {
        precondition(schedule == nil, "RequestExecutor.run: an event loop's executor starts tasks with start(_:)")
        pthread_mutex_lock(lock)
        precondition(!retired && !accepting, "RequestExecutor.run: the executor is retired or already running")
        finished = false
        accepting = true
        cancelRequested = false
        pthread_mutex_unlock(lock)
        timedOut = false
        let outer = becomeCurrent()
        defer { pthread_setspecific(runningKey, outer) }
        // The task starts right here, on this thread, and runs until it
        // first waits for something that completes elsewhere (most requests
        // never do): no job is queued for its start.
        //
        // (A task typed as throwing takes the closure as the runtime does:
        // no reabstraction thunk, which cost an allocation and two task
        // frames a request.)
        let started = Task<Void, any Error>.immediate(executorPreference: self) { () async throws in
            await operation()
        }
        pthread_mutex_lock(lock)
        if finished && head == jobs.count {  // it never waited (most requests)
            endRun()
            pthread_mutex_unlock(lock)
            return true
        }
        task = started
        let cancelNow = cancelRequested
        pthread_mutex_unlock(lock)
        if cancelNow { started.cancel() }
        if !runJobs(timeout: timeout) {
            timedOut = true
            started.cancel()
            guard runJobs(timeout: grace) else {
                shutdown()
                return false
            }
        }
        return true
    }

    /// The operation of ``run(timeout:grace:endingItself:)`` has ended (it
    /// returns without awaiting anything more).
    package func operationEnded() {
        pthread_mutex_lock(lock)
        finished = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(lock)
    }

    /// Cancels the task of the current ``run(timeout:_:)`` (the client went away).
    public func cancel() {
        pthread_mutex_lock(lock)
        let task = self.task
        let starting = task == nil && accepting
        if starting { cancelRequested = true }
        pthread_mutex_unlock(lock)
        if let task {
            task.cancel()
        } else if starting && Self.current === self {
            // Called on the thread of the run while the handle is not known
            // yet: only the task itself, still in its start, can call here
            // then, so it is the current task. (From another thread, `run`
            // cancels it once it has the handle.)
            withUnsafeCurrentTask { $0?.cancel() }
        }
    }

    /// No more runs: jobs enqueued from now on run on the global concurrent
    /// executor (a task that outlives its request, or was left at a timeout).
    public func shutdown() {
        pthread_mutex_lock(lock)
        retired = true
        accepting = false
        task = nil
        let left = jobs[head...]
        jobs = []
        head = 0
        pthread_mutex_unlock(lock)
        for job in left {
            globalConcurrentExecutor.enqueue(ExecutorJob(job))
        }
    }

    /// Runs jobs until the task finishes; false when none came for `timeout`.
    /// (Called with this executor as ``current``.)
    private func runJobs(timeout: Duration?) -> Bool {
        // The deadline counts from the last progress (the start, or the
        // last job run), read from the clock only when the thread is about
        // to wait: a task that never waits (most requests) never reads it.
        var deadline: timespec?
        let executor = asUnownedTaskExecutor()
        while true {
            pthread_mutex_lock(lock)
            while head == jobs.count && !finished {
                if let timeout {
                    if deadline == nil { deadline = Self.deadline(after: timeout) }
                    if pthread_cond_timedwait(condition, lock, &deadline!) == ETIMEDOUT, head == jobs.count, !finished {
                        pthread_mutex_unlock(lock)
                        return false
                    }
                } else {
                    pthread_cond_wait(condition, lock)
                }
            }
            if head == jobs.count {  // finished, nothing left to run
                endRun()
                pthread_mutex_unlock(lock)
                return true
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            pthread_mutex_unlock(lock)
            job.runSynchronously(on: executor)
            deadline = nil
        }
    }

    /// The run's task has finished and no job is left: later jobs (a task
    /// that outlived the request) go elsewhere. Called under `lock`.
    private func endRun() {
        jobs.removeAll(keepingCapacity: true)
        head = 0
        task = nil
        accepting = false
    }

    private static func deadline(after duration: Duration) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = duration.components
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var whole = Int(now.tv_sec) + Int(seconds)
        if nanoseconds >= 1_000_000_000 {
            whole += nanoseconds / 1_000_000_000
            nanoseconds %= 1_000_000_000
        }
        return timespec(tv_sec: whole, tv_nsec: nanoseconds)
    }

    /// Runs `body` on `executor`'s thread (where the server's per-request
    /// state may be used): right here when this thread is running its jobs,
    /// else after a hop to it; right here when there is none.
    static func onRequestThread<R>(_ executor: RequestExecutor?, _ body: () throws -> R) async throws -> R {
        try Task.checkCancellation()
        guard let executor, executor !== current else { return try body() }
        return try await withTaskExecutorPreference(executor) { try body() }
    }
}

/// The executor whose jobs a thread is running (see `current`).
private let runningKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// Each server thread's executor (see `forCurrentThread()`), released with the thread.
private let threadKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { stored in
        if let stored { Unmanaged<RequestExecutor>.fromOpaque(stored).takeRetainedValue().shutdown() }
    }
    return key
}()

/// Where a task leaves its result for the thread that waits for it (written
/// before, and read after, the executor's lock is taken).
final class ResultSlot<T>: @unchecked Sendable {
    @exclusivity(unchecked) var value: T?
}
