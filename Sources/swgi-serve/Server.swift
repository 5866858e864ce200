import CSWGIABI
import SWGIHosting
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The HTTP side: each request's application call runs on a thread of the
/// pool (applications block), the body and the response cross to the event
/// loop through the RequestContext.
final class SWGIHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let app: LoadedApplication
    let config: ServeConfig
    let pool: NIOThreadPool
    private var current: RequestContext?

    init(app: LoadedApplication, config: ServeConfig, pool: NIOThreadPool) {
        self.app = app
        self.config = config
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let channel = context.channel
            let request = "\(head.method.rawValue) \(head.uri) HTTP/\(head.version.major).\(head.version.minor)"
            let remote = channel.remoteAddress?.ipAddress ?? "-"
            let ctx = RequestContext(channel: channel, version: head.version, isHead: head.method == .HEAD,
                                     keepAlive: head.isKeepAlive, remote: remote, log: { line in
                                         printError("\(remote) \"\(request)\" \(line)")
                                     })
            current = ctx
            let vars: [(String, [UInt8])]
            do {
                vars = try cgiVariables(head, local: channel.localAddress, remote: channel.remoteAddress, config: config)
            } catch RequestRejection.status(let code, let reason) {
                ctx.endInput()
                pool.submit { _ in self.reject(ctx, code, reason, request) }
                return
            } catch {
                return
            }
            let app = self.app
            pool.submit { _ in Self.serve(app, ctx, vars, request) }
        case .body(let buffer):
            current?.append(buffer)
        case .end:
            current?.endInput()
            current = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        current?.endInput(failed: true)
        current = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        current?.endInput(failed: true)
        context.close(promise: nil)
    }

    private func reject(_ ctx: RequestContext, _ code: Int, _ reason: String, _ request: String) {
        var headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", String(reason.utf8.count + 1))])
        if !ctx.keepAlive { headers.add(name: "Connection", value: "close") }
        ctx.head = HTTPResponseHead(version: ctx.version, status: .custom(code: UInt(code), reasonPhrase: reason), headers: headers)
        _ = ctx.sendHeadIfNeeded()
        if !ctx.isHead {
            _ = ctx.send(.body(.byteBuffer(ctx.channel.allocator.buffer(string: reason + "\n"))))
        }
        Self.finish(ctx, complete: true)
        printError("\(ctx.remote) \"\(request)\" \(code)")
    }

    /// Runs the application for one request, on a pool thread.
    static func serve(_ app: LoadedApplication, _ ctx: RequestContext, _ vars: [(String, [UInt8])], _ request: String) {
        let rc: Int32 = withPairs(vars) { pairs, count in
            var req = swgi_request_v1(size: UInt32(MemoryLayout<swgi_request_v1>.size),
                                      flags: SWGI_FLAG_MULTITHREAD,
                                      host: Unmanaged.passUnretained(ctx).toOpaque(),
                                      callbacks: UnsafePointer(hostTable),
                                      environ: pairs, environ_count: count, timeout_usec: 0)
            return app.table.pointee.handle(app.table.pointee.context, &req)
        }
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
        printError("\(ctx.remote) \"\(request)\" \(ctx.status) \(ctx.bytesSent)")
    }

    static func finish(_ ctx: RequestContext, complete: Bool, close: Bool = false) {
        if complete && !ctx.clientGone {
            _ = ctx.send(.end(nil))
        }
        if !complete || close || !ctx.keepAlive || ctx.clientGone {
            ctx.channel.close(promise: nil)
        }
    }
}

/// One line to standard error (fd 2: no shared FILE*).
func printError(_ line: String) {
    var line = line + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
