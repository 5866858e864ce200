import CSWGIABI
import SWGIHosting
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The HTTP side. A sync application's call runs on a thread of the pool
/// (sync applications block); an async application runs on the channel's
/// event loop through handle_async, with no thread hop and no thread held
/// while it awaits. The body and the response cross through the
/// RequestContext.
final class SWGIHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let app: LoadedApplication
    let config: ServeConfig
    let pool: NIOThreadPool
    private var current: RequestContext?
    /// The channel's latest request, whose response may still be going out
    /// after its body ended: told when the channel's writability changes
    /// and when the client goes away.
    private var running: RequestContext?
    /// An async request waiting for its body before it starts (see `channelRead`).
    private var waiting: RequestContext?

    /// An async application starts once a body of up to this many bytes
    /// (by its Content-Length) has arrived whole: then a sync read of
    /// `swgi.input` (a form) cannot find the loop waiting. Larger bodies
    /// stream, read with `await`. Never more than the context buffers before
    /// it pauses the socket, which would then wait for an end that cannot come.
    static let wholeBodyLimit = RequestContext.highWater

    init(app: LoadedApplication, config: ServeConfig, pool: NIOThreadPool) {
        self.app = app
        self.config = config
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let channel = context.channel
            let ctx = RequestContext(channel: channel, head: head, onLoop: app.handleAsync != nil)
            current = ctx
            running = ctx
            let vars: [(String, [UInt8])]
            do {
                vars = try cgiVariables(head, local: channel.localAddress, remote: channel.remoteAddress, config: config)
            } catch RequestRejection.status(let code, let reason) {
                ctx.endInput()
                if ctx.onLoop {
                    Self.reject(ctx, code, reason)
                } else {
                    pool.submit { _ in Self.reject(ctx, code, reason) }
                }
                return
            } catch {
                return
            }
            ctx.environ = EnvironPairs(vars)
            if !ctx.onLoop {
                let app = self.app
                pool.submit { _ in Self.serve(app, ctx) }
            } else if let length = head.headers.first(name: "Content-Length").flatMap({ Int($0) }),
                      length > 0, length <= Self.wholeBodyLimit {
                waiting = ctx
            } else {
                Self.start(app, ctx)
            }
        case .body(let buffer):
            current?.append(buffer)
        case .end:
            current?.endInput()
            current = nil
            if let ctx = waiting {
                waiting = nil
                Self.start(app, ctx)
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        current?.writabilityChanged()
        running?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        current?.markGone()
        running?.markGone()
        current = nil
        running = nil
        waiting = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        current?.markGone()
        running?.markGone()
        context.close(promise: nil)
    }

    private static func reject(_ ctx: RequestContext, _ code: Int, _ reason: String) {
        var headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", String(reason.utf8.count + 1))])
        if !ctx.keepAlive { headers.add(name: "Connection", value: "close") }
        ctx.head = HTTPResponseHead(version: ctx.version, status: .custom(code: UInt(code), reasonPhrase: reason), headers: headers)
        _ = ctx.sendHeadIfNeeded()
        if !ctx.isHead {
            _ = ctx.send(.body(.byteBuffer(ctx.channel.allocator.buffer(string: reason + "\n"))))
        }
        finish(ctx, complete: true)
        ctx.log("\(code)")
    }

    /// The ABI's request for `ctx`.
    private static func swgiRequest(_ ctx: RequestContext, _ host: UnsafeMutableRawPointer,
                                    _ callbacks: UnsafeMutablePointer<swgi_host_v1>) -> swgi_request_v1 {
        let pairs = ctx.environ!.pairs
        return swgi_request_v1(size: UInt32(MemoryLayout<swgi_request_v1>.size), flags: SWGI_FLAG_MULTITHREAD,
                               host: host, callbacks: UnsafePointer(callbacks),
                               environ: UnsafePointer(pairs.baseAddress), environ_count: pairs.count, timeout_usec: 0)
    }

    /// Runs a sync application for one request, on a pool thread.
    static func serve(_ app: LoadedApplication, _ ctx: RequestContext) {
        var req = swgiRequest(ctx, Unmanaged.passUnretained(ctx).toOpaque(), hostTable)
        let rc = app.table.pointee.handle(app.table.pointee.context, &req)
        complete(ctx, rc)
    }

    /// Starts an async application on the channel's event loop (this
    /// thread): it returns at once, and its `done` completes the response.
    static func start(_ app: LoadedApplication, _ ctx: RequestContext) {
        let host = Unmanaged.passRetained(ctx).toOpaque()  // released by done
        var req = swgiRequest(ctx, host, loopHostTable)
        let rc = app.handleAsync!(app.table.pointee.context, &req, requestDone)
        if rc != SWGI_OK {
            Unmanaged<RequestContext>.fromOpaque(host).release()
            complete(ctx, rc)
        }
    }

    /// Ends the response as the application's result says (on the thread
    /// that ran it: a pool thread, or the loop).
    static func complete(_ ctx: RequestContext, _ rc: Int32) {
        if rc == SWGI_DONE && ctx.head != nil {
            _ = ctx.sendHeadIfNeeded()
            finish(ctx, complete: true)
        } else if !ctx.headSent {
            let code = rc >= 400 && rc < 600 ? Int(rc) : 500
            let reason = code == 500 ? "Internal Server Error" : "Error"
            ctx.head = HTTPResponseHead(version: ctx.version, status: .custom(code: UInt(code), reasonPhrase: reason),
                                        headers: HTTPHeaders([("Content-Type", "text/plain"),
                                                              ("Content-Length", String(reason.utf8.count + 1)),
                                                              ("Connection", "close")]))
            ctx.status = code
            _ = ctx.sendHeadIfNeeded()
            if !ctx.isHead { _ = ctx.send(.body(.byteBuffer(ctx.channel.allocator.buffer(string: reason + "\n")))) }
            finish(ctx, complete: true, close: true)
        } else {
            // Started and failed: cut, so the client can tell it is incomplete.
            finish(ctx, complete: false)
        }
        ctx.log("\(ctx.status) \(ctx.bytesSent)")
    }

    static func finish(_ ctx: RequestContext, complete: Bool, close: Bool = false) {
        if complete && !ctx.clientGone {
            _ = ctx.send(.end(nil))
        }
        if !complete || close || !ctx.keepAlive || ctx.clientGone {
            ctx.close()
        }
    }
}

/// handle_async's done: on the loop, from the application's last job.
private let requestDone: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Void = { host, rc in
    guard let host else { return }
    let ctx = Unmanaged<RequestContext>.fromOpaque(host).takeRetainedValue()
    SWGIHandler.complete(ctx, rc)
}

/// One line to standard error (fd 2: no shared FILE*).
func printError(_ line: String) {
    var line = line + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
