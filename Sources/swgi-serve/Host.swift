import CSWGIABI
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One request, as the application side sees it: the body arriving from
/// the event loop, the response going back to it. The `host` pointer of the
/// ABI's callbacks.
///
/// Two ways to serve: a sync application runs on a pool thread, whose reads
/// and writes wait (`onLoop` false); an async one runs on the channel's
/// event loop through handle_async (`onLoop` true), where nothing waits: a
/// read with nothing to give returns SWGI_EAGAIN, writes are queued, and the
/// task awaits wait_readable/wait_writable, which wake it from the loop.
final class RequestContext: @unchecked Sendable {
    let channel: any Channel
    let version: HTTPVersion
    let isHead: Bool
    let keepAlive: Bool
    let onLoop: Bool
    /// The client's address, as it was when the request arrived.
    let remote: String
    /// The request line, for log lines.
    let request: String
    /// The environ as the ABI passes it, alive as long as the request.
    var environ: EnvironPairs?

    // The request body: filled on the event loop, drained by the application.
    private let input = ConditionLock(value: 0)  // 1: something to read (bytes, end, or failure)
    private var chunks: [ByteBuffer] = []
    private var buffered = 0
    private var ended = false
    private var failed = false
    private var paused = false
    private var readWaker: Waker?
    static let highWater = 1 << 20
    static let lowWater = 256 << 10

    // The response: the application's calls, one at a time (SWGIBridge
    // serializes them), and the loop's events (under `output`).
    var head: HTTPResponseHead?
    var headSent = false
    var status = 0
    var bytesSent = 0
    private let output = NIOLock()
    private var gone = false
    private var writeWaker: Waker?
    /// The last queued write (on the loop): the connection closes after it.
    private var lastWrite: EventLoopFuture<Void>?

    init(channel: any Channel, head: HTTPRequestHead, onLoop: Bool) {
        self.channel = channel
        remote = channel.remoteAddress?.ipAddress ?? "-"
        request = "\(head.method.rawValue) \(head.uri) HTTP/\(head.version.major).\(head.version.minor)"
        version = head.version
        isHead = head.method == .HEAD
        keepAlive = head.isKeepAlive
        self.onLoop = onLoop
    }

    /// One line to standard error, naming the client and the request.
    func log(_ line: String) {
        printError("\(remote) \"\(request)\" \(line)")
    }

    var clientGone: Bool { output.withLock { gone } }

    // MARK: the event loop's side

    func append(_ buffer: ByteBuffer) {
        input.lock()
        chunks.append(buffer)
        buffered += buffer.readableBytes
        if buffered > Self.highWater && !paused {
            paused = true
            channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
        let waker = readWaker
        readWaker = nil
        input.unlock(withValue: 1)
        waker?.wake()
    }

    func endInput(failed: Bool = false) {
        input.lock()
        ended = true
        self.failed = self.failed || failed
        let waker = readWaker
        readWaker = nil
        input.unlock(withValue: 1)
        waker?.wake()
    }

    /// The channel can take more output, or is gone.
    func writabilityChanged() {
        let waker: Waker? = output.withLock {
            guard channel.isWritable || gone else { return nil }
            defer { writeWaker = nil }
            return writeWaker
        }
        waker?.wake()
    }

    /// The client is gone: a waiting task learns it from its next call.
    func markGone() {
        output.withLock { gone = true }
        writabilityChanged()
        endInput(failed: true)
    }

    // MARK: the application's side

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int64 {
        if onLoop {
            input.lock()
        } else {
            input.lock(whenValue: 1)
        }
        if chunks.isEmpty {
            let result: Int64 = ended ? (failed ? -1 : 0) : Int64(SWGI_EAGAIN)
            input.unlock(withValue: ended ? 1 : 0)
            return result
        }
        var first = chunks.removeFirst()
        let n = min(buffer.count, first.readableBytes)
        first.withUnsafeReadableBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        first.moveReaderIndex(forwardBy: n)
        if first.readableBytes > 0 { chunks.insert(first, at: 0) }
        buffered -= n
        if paused && buffered < Self.lowWater {
            paused = false
            let channel = self.channel
            channel.eventLoop.execute {
                channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                channel.read()
            }
        }
        input.unlock(withValue: chunks.isEmpty && !ended ? 0 : 1)
        return Int64(n)
    }

    /// wait_readable: 1 when a read would return at once, else 0 and `waker` later.
    func waitReadable(_ waker: Waker) -> Int32 {
        input.lock()
        defer { input.unlock() }
        if !chunks.isEmpty || ended { return 1 }
        readWaker = waker
        return 0
    }

    /// wait_writable: 1 when the channel takes more (or is gone), else 0 and `waker` later.
    func waitWritable(_ waker: Waker) -> Int32 {
        output.withLock {
            if gone || channel.isWritable { return 1 }
            writeWaker = waker
            return 0
        }
    }

    /// Sends one part: on a pool thread, waits until NIO has written it
    /// (flushed, as PEP 3333 asks); on the loop, queues it.
    func send(_ part: HTTPServerResponsePart) -> Bool {
        if clientGone { return false }
        if onLoop {
            guard channel.isActive else {
                markGone()
                return false
            }
            let written = channel.writeAndFlush(part)
            written.whenFailure { [self] _ in markGone() }
            lastWrite = written
            return true
        }
        do {
            try channel.writeAndFlush(part).wait()
            return true
        } catch {
            output.withLock { gone = true }
            return false
        }
    }

    func sendHeadIfNeeded() -> Bool {
        guard !headSent, let head else { return !clientGone }
        headSent = true
        return send(.head(head))
    }

    /// Closes the connection once what was queued has been written.
    func close() {
        let channel = self.channel
        if let lastWrite {
            lastWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }
}

/// A task's wait, as the ABI gives it: called once, on the loop.
struct Waker: @unchecked Sendable {
    let function: @convention(c) (UnsafeMutableRawPointer?) -> Void
    let argument: UnsafeMutableRawPointer?

    func wake() {
        function(argument)
    }
}

/// The environ's pairs for the ABI, in memory of their own for as long as
/// the request lasts.
final class EnvironPairs {
    let pairs: UnsafeMutableBufferPointer<swgi_pair>
    private let bytes: UnsafeMutableRawBufferPointer

    init(_ vars: [(String, [UInt8])]) {
        let size = vars.reduce(0) { $0 + $1.0.utf8.count + $1.1.count }
        bytes = .allocate(byteCount: max(size, 1), alignment: 1)
        pairs = .allocate(capacity: vars.count)
        var used = 0
        for (i, (name, value)) in vars.enumerated() {
            let start = bytes.baseAddress!.assumingMemoryBound(to: CChar.self)
            let n = name.utf8.count
            UnsafeMutableRawBufferPointer(rebasing: bytes[used..<(used + n)]).copyBytes(from: name.utf8)
            let nameBytes = swgi_bytes(data: start + used, len: n)
            used += n
            UnsafeMutableRawBufferPointer(rebasing: bytes[used..<(used + value.count)]).copyBytes(from: value)
            pairs[i] = swgi_pair(name: nameBytes, value: swgi_bytes(data: start + used, len: value.count))
            used += value.count
        }
    }

    deinit {
        bytes.deallocate()
        pairs.deallocate()
    }
}

private func context(_ host: UnsafeMutableRawPointer?) -> RequestContext? {
    host.map { Unmanaged<RequestContext>.fromOpaque($0).takeUnretainedValue() }
}

private let hostRead: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<CChar>?, Int) -> Int64 = {
    host, buf, len in
    guard let ctx = context(host), let buf else { return -1 }
    return ctx.read(into: UnsafeMutableRawBufferPointer(start: buf, count: len))
}

private let hostStartResponse: @convention(c) (UnsafeMutableRawPointer?, Int32, swgi_bytes, UnsafePointer<swgi_pair>?, Int) -> Int32 = {
    host, status, line, headers, count in
    guard let ctx = context(host) else { return SWGI_ESTATE }
    if ctx.headSent { return SWGI_ESTATE }
    let statusLine = string(line)
    var fields = HTTPHeaders()
    if let headers {
        for i in 0..<count { fields.add(name: string(headers[i].name), value: string(headers[i].value)) }
    }
    if !ctx.keepAlive { fields.replaceOrAdd(name: "Connection", value: "close") }
    let reason = String(statusLine.dropFirst(4))
    ctx.status = Int(status)
    ctx.head = HTTPResponseHead(version: ctx.version, status: .custom(code: UInt(status), reasonPhrase: reason),
                                headers: fields)
    return SWGI_OK
}

private let hostWrite: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int, Int32) -> Int32 = {
    host, data, len, _ in
    guard let ctx = context(host), let data else { return SWGI_ESTATE }
    guard ctx.head != nil else { return SWGI_ESTATE }
    guard ctx.sendHeadIfNeeded() else { return SWGI_ECLIENT }
    if ctx.isHead { return SWGI_OK }
    let buffer = ctx.channel.allocator.buffer(bytes: UnsafeRawBufferPointer(start: data, count: len))
    guard ctx.send(.body(.byteBuffer(buffer))) else { return SWGI_ECLIENT }
    ctx.bytesSent += len
    return SWGI_OK
}

/// wait_readable / wait_writable: through the request's context.
private let hostWaitReadable: @convention(c) (UnsafeMutableRawPointer?, (@convention(c) (UnsafeMutableRawPointer?) -> Void)?,
                                              UnsafeMutableRawPointer?) -> Int32 = { host, wake, arg in
    guard let ctx = context(host), let wake else { return 1 }
    return ctx.waitReadable(Waker(function: wake, argument: arg))
}

private let hostWaitWritable: @convention(c) (UnsafeMutableRawPointer?, (@convention(c) (UnsafeMutableRawPointer?) -> Void)?,
                                              UnsafeMutableRawPointer?) -> Int32 = { host, wake, arg in
    guard let ctx = context(host), let wake else { return 1 }
    return ctx.waitWritable(Waker(function: wake, argument: arg))
}

/// schedule: the job runs on the channel's event loop.
private let hostSchedule: @convention(c) (UnsafeMutableRawPointer?, (@convention(c) (UnsafeMutableRawPointer?) -> Void)?,
                                          UnsafeMutableRawPointer?) -> Void = { host, job, arg in
    guard let ctx = context(host), let job else { return }
    let call = Waker(function: job, argument: arg)
    ctx.channel.eventLoop.execute { call.wake() }
}

private let hostLog: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?, Int) -> Void = {
    host, level, message, len in
    guard let ctx = context(host), let message else { return }
    let text = String(decoding: UnsafeRawBufferPointer(start: message, count: len), as: UTF8.self)
    ctx.log("[\(["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"][Int(max(0, min(7, level)))])] \(text)")
}

private func string(_ bytes: swgi_bytes) -> String {
    guard let data = bytes.data else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: data, count: bytes.len), as: UTF8.self)
}

/// The callback tables: for a pool thread, one that ends before `send_file`
/// (swgi-serve lets the application send file bodies through `write`); for
/// the event loop, the whole table, with no send_file or environ callbacks.
nonisolated(unsafe) let hostTable = makeHostTable(onLoop: false)
nonisolated(unsafe) let loopHostTable = makeHostTable(onLoop: true)

private func makeHostTable(onLoop: Bool) -> UnsafeMutablePointer<swgi_host_v1> {
    let table = UnsafeMutablePointer<swgi_host_v1>.allocate(capacity: 1)
    table.initialize(to: swgi_host_v1(size: 0, read: hostRead, start_response: hostStartResponse,
                                      write: hostWrite, log: hostLog, send_file: nil, environ_get: nil, environ_all: nil,
                                      schedule: onLoop ? hostSchedule : nil,
                                      wait_readable: onLoop ? hostWaitReadable : nil,
                                      wait_writable: onLoop ? hostWaitWritable : nil))
    table.pointee.size = UInt32(onLoop ? MemoryLayout<swgi_host_v1>.size
                                       : MemoryLayout<swgi_host_v1>.offset(of: \swgi_host_v1.send_file)!)
    return table
}
