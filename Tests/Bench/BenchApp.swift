// mod_swgi's side of scripts/bench: the same scenarios, the same bytes as
// the C handler and the WSGI application (apache/bench/).
import SWGIBridge
internal import _Concurrency

/// What the environ scenario reads.
let environKeys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "SERVER_PROTOCOL", "QUERY_STRING",
                   "HTTP_HOST", "HTTP_USER_AGENT", "REMOTE_ADDR", "SERVER_PORT", "SERVER_NAME"]
let block = Chunk([UInt8](repeating: UInt8(ascii: "x"), count: 65536))

struct Bench: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let path = environ.pathInfo
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let scenario = slash.map { path[path.utf8.index(after: $0)...] } ?? path[...]
        switch scenario {
        case "hello":
            try startResponse("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
            return ["Hello world!\n"]
        case "environ":
            // The ten values joined by spaces into one 200-byte buffer,
            // padded with dots (the C handler formats into one buffer too).
            var text: [UInt8] = []
            text.reserveCapacity(256)
            for (i, key) in environKeys.enumerated() {
                if i > 0 { text.append(UInt8(ascii: " ")) }
                if let value = environ[key] { text.append(contentsOf: value.utf8) }
            }
            if text.count > 199 { text.removeLast(text.count - 199) }
            text.append(contentsOf: repeatElement(UInt8(ascii: "."), count: 199 - text.count))
            text.append(UInt8(ascii: "\n"))
            try startResponse("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "200")])
            return [Chunk(text)]
        case "stream":
            try startResponse("200 OK", [("Content-Type", "application/octet-stream")])
            var sent = 0
            return Body(next: {
                guard sent < 16 else { return nil }
                sent += 1
                return block
            })
        case "upload":
            try startResponse("200 OK", [("Content-Type", "application/octet-stream")])
            let input = environ.input
            return Body(next: {
                let data = try input.read(65536)
                return data.isEmpty ? nil : Chunk(data)
            })
        case "headers":
            try startResponse("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")]
                                + (0..<10).map { ("X-Bench-\($0)", "value") })
            return ["Hello world!\n"]
        default:
            try startResponse("404 Not Found", [("Content-Type", "text/plain")])
            return ["unknown scenario\n"]
        }
    }
}

/// The async scenarios: the same bytes from an async application (the
/// request runs as a task on Apache's thread).
struct AsyncBench: AsyncApplication {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        // The scenario as the sync application finds it (the same work).
        let path = environ.pathInfo
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let scenario = slash.map { path[path.utf8.index(after: $0)...] } ?? path[...]
        switch scenario {
        case "hello":
            try startResponse("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
            return ["Hello world!\n"]
        case "stream":
            try startResponse("200 OK", [("Content-Type", "application/octet-stream")])
            return AsyncBody { write in
                for _ in 0..<16 { try await write(block) }
            }
        default:
            try startResponse("404 Not Found", [("Content-Type", "text/plain")])
            return ["unknown scenario\n"]
        }
    }
}

@c(swgi_entry_application) public func entry() -> UnsafeRawPointer { exportApplication(Bench()) }
@c(swgi_entry_async) public func asyncEntry() -> UnsafeRawPointer { exportApplication(AsyncBench()) }
