// swgi-serve: the wsgiref.simple_server of SWGI. Serves one SWGI
// application library over HTTP/1.1 with SwiftNIO, without Apache, loading
// it as mod_swgi does (same C ABI, same environ).
import NIOCore
import SWGIHosting
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

let usage = """
    usage: swgi-serve [options] APP.so

    Serves the SWGI application in APP.so on http://HOST:PORT/.

    options:
      --host HOST              address to listen on (default 127.0.0.1)
      --port PORT              port (default 8000; 0 picks a free one)
      --mount /PREFIX          URL path the application is mounted at (SCRIPT_NAME)
      --entry NAME             entry point swgi_entry_NAME (default application)
      --threads N              a sync application's requests served at once
                               (default 16); an async application runs on
                               the event loops (one per core) instead
      --pass-authorization     pass the Authorization header (HTTP_AUTHORIZATION)
      --setenv NAME VALUE      add a variable to every environ (like SetEnv)
      --help                   this text

    """

func fail(_ message: String) -> Never {
    printError("swgi-serve: " + message)
    exit(2)
}

var config = ServeConfig()
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    func value() -> String {
        guard let v = args.popFirst() else { fail("\(arg) needs a value\n\n" + usage) }
        return v
    }
    switch arg {
    case "--help", "-h":
        print(usage, terminator: "")
        exit(0)
    case "--host": config.host = value()
    case "--port":
        guard let p = Int(value()), (0...65535).contains(p) else { fail("--port takes a number from 0 to 65535") }
        config.port = p
    case "--mount":
        var m = value()
        while m.hasSuffix("/") { m.removeLast() }
        guard m.isEmpty || m.hasPrefix("/") else { fail("--mount takes a URL path starting with /") }
        config.mount = m
    case "--entry": config.entry = value()
    case "--threads":
        guard let n = Int(value()), n > 0 else { fail("--threads takes a positive number") }
        config.threads = n
    case "--pass-authorization": config.passAuthorization = true
    case "--setenv":
        let name = value()
        config.setenv.append((name, value()))
    default:
        guard !arg.hasPrefix("-"), config.path.isEmpty else { fail("unknown option \(arg)\n\n" + usage) }
        config.path = arg
    }
}
guard !config.path.isEmpty else { fail("which application? give the path of its .so\n\n" + usage) }
if !config.path.hasPrefix("/"), let cwd = getcwd(nil, 0) {
    config.path = String(cString: cwd) + "/" + config.path
    free(cwd)
}

let app: LoadedApplication
do {
    app = try loadApplication(path: config.path, entry: config.entry)
} catch {
    fail("\(error)")
}

// Sync applications block: each request holds a thread of the pool. An
// async one runs on the event loops and needs none.
let pool = NIOThreadPool(numberOfThreads: config.threads)
if app.handleAsync == nil {
    pool.start()
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let settings = config
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 256)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(SWGIHandler(app: app, config: settings, pool: pool))
        }
    }
    .childChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)

let server: any Channel
do {
    server = try bootstrap.bind(host: config.host, port: config.port).wait()
} catch {
    fail("cannot listen on \(config.host):\(config.port): \(error)")
}
let port = server.localAddress?.port ?? config.port
print("Serving \(config.path) (entry \(config.entry)) on http://\(config.host):\(port)\(config.mount)/")
fflush(nil)
try server.closeFuture.wait()
