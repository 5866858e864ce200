import CSWGIABI
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One request, as the application's thread sees it: the body arriving from
/// the event loop, the response going back to it. The `host` pointer of the
/// ABI's callbacks.
final class RequestContext: @unchecked Sendable {
    let channel: any Channel
    let version: HTTPVersion
    let isHead: Bool
    let keepAlive: Bool
    /// The client's address, as it was when the request arrived.
    let remote: String
    let log: @Sendable (String) -> Void

    // The request body: filled on the event loop, drained on the app's thread.
    private let input = ConditionLock(value: 0)  // 1: something to read (bytes, end, or failure)
    private var chunks: [ByteBuffer] = []
    private var buffered = 0
    private var ended = false
    private var failed = false
    private var paused = false
    static let highWater = 1 << 20
    static let lowWater = 256 << 10

    // The response: only the app's thread touches these.
    var head: HTTPResponseHead?
    var headSent = false
    var status = 0
    var bytesSent = 0
    var clientGone = false

    init(channel: any Channel, version: HTTPVersion, isHead: Bool, keepAlive: Bool, remote: String,
         log: @escaping @Sendable (String) -> Void) {
        self.channel = channel
        self.remote = remote
        self.version = version
        self.isHead = isHead
        self.keepAlive = keepAlive
        self.log = log
    }

    // MARK: the event loop's side

    func append(_ buffer: ByteBuffer) {
        input.lock()
        chunks.append(buffer)
        buffered += buffer.readableBytes
        if buffered > Self.highWater && !paused {
            paused = true
            channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
        input.unlock(withValue: 1)
    }

    func endInput(failed: Bool = false) {
        input.lock()
        ended = true
        self.failed = self.failed || failed
        input.unlock(withValue: 1)
    }

    // MARK: the application's side

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int64 {
        input.lock(whenValue: 1)
        if chunks.isEmpty {
            let result: Int64 = failed ? -1 : 0
            input.unlock(withValue: 1)
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

    /// Writes and waits until NIO has written it: flushed, as PEP 3333 asks.
    func send(_ part: HTTPServerResponsePart) -> Bool {
        if clientGone { return false }
        do {
            try channel.writeAndFlush(part).wait()
            return true
        } catch {
            clientGone = true
            return false
        }
    }

    func sendHeadIfNeeded() -> Bool {
        guard !headSent, let head else { return !clientGone }
        headSent = true
        return send(.head(head))
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

/// The callback table. It ends before `send_file`: swgi-serve lets the
/// application send file bodies through `write`.
nonisolated(unsafe) let hostTable: UnsafeMutablePointer<swgi_host_v1> = {
    let table = UnsafeMutablePointer<swgi_host_v1>.allocate(capacity: 1)
    table.initialize(to: swgi_host_v1(size: 0, read: hostRead, start_response: hostStartResponse,
                                      write: hostWrite, log: hostLog, send_file: nil, environ_get: nil, environ_all: nil))
    table.pointee.size = UInt32(MemoryLayout<swgi_host_v1>.offset(of: \swgi_host_v1.send_file) ?? 0)
    return table
}()
