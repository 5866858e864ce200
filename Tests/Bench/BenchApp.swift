// mod_swgi's side of scripts/bench: the same scenarios, the same bytes as
// the C handler and the WSGI application (apache/bench/).
import SWGIBridge
import CSWGIABI
#if canImport(Glibc)
import Glibc
#endif
internal import _Concurrency

/// What the environ scenario reads.
let environKeys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "SERVER_PROTOCOL", "QUERY_STRING",
                   "HTTP_HOST", "HTTP_USER_AGENT", "REMOTE_ADDR", "SERVER_PORT", "SERVER_NAME"]
/// The environ scenario's padding, appended as a slice (one copy; a
/// `repeatElement` is appended byte by byte).
let dots = [UInt8](repeating: UInt8(ascii: "."), count: 199)
let block = Chunk([UInt8](repeating: UInt8(ascii: "x"), count: 65536))

struct Bench: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        // Routed on the whole PATH_INFO, as an application mounted at its
        // SCRIPT_NAME is (the C handler and the WSGI application take the
        // URL's last segment: the same answer for the bench's URLs).
        switch environ.pathInfo {
        case "/hello":
            try startResponse("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
            return ["Hello world!\n"]
        case "/environ":
            // The ten values joined by spaces into one 200-byte buffer,
            // padded with dots (the C handler formats into one buffer too).
            var text: [UInt8] = []
            text.reserveCapacity(256)
            for (i, key) in environKeys.enumerated() {
                if i > 0 { text.append(UInt8(ascii: " ")) }
                if let value = environ[key] { text.append(contentsOf: value.utf8) }
            }
            if text.count > 199 { text.removeLast(text.count - 199) }
            text.append(contentsOf: dots[..<(199 - text.count)])
            text.append(UInt8(ascii: "\n"))
            try startResponse("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "200")])
            return [Chunk(text)]
        case "/stream":
            try startResponse("200 OK", [("Content-Type", "application/octet-stream")])
            var sent = 0
            return Body(next: {
                guard sent < 16 else { return nil }
                sent += 1
                return block
            })
        case "/upload":
            try startResponse("200 OK", [("Content-Type", "application/octet-stream")])
            let input = environ.input
            return Body(next: {
                let data = try input.read(65536)
                return data.isEmpty ? nil : Chunk(data)
            })
        case "/headers":
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
        switch environ.pathInfo {
        case "/hello":
            try startResponse("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
            return ["Hello world!\n"]
        case "/stream":
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

// Not a contestant: hello written straight against the C ABI, with no
// environ, gateway, validation or objects (scripts/bench --instructions,
// `floor-hello`). It finds its scenario in PATH_INFO as the applications
// do, then sets the same head and body. What any Swift bridge over this
// ABI costs at least, the rest of mod_swgi's cost being the module's C side
// (the handler, the configuration, the environ's providers).
private func floorHandle(_ context: UnsafeMutableRawPointer?, _ request: UnsafePointer<swgi_request_v1>?) -> Int32 {
    guard let request, let callbacks = request.pointee.callbacks else { return 500 }
    let host = request.pointee.host
    var path = swgi_bytes(data: nil, len: 0)
    guard callbacks.pointee.environ_get(host, "PATH_INFO", 9, &path) != 0, let data = path.data else { return 404 }
    guard path.len == 6, memcmp(data, "/hello", 6) == 0 else { return 404 }
    let status: StaticString = "200 OK", type: StaticString = "Content-Type", plain: StaticString = "text/plain"
    let length: StaticString = "Content-Length", thirteen: StaticString = "13", body: StaticString = "Hello world!\n"
    func bytesOf(_ s: StaticString) -> swgi_bytes {
        swgi_bytes(data: UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self), len: s.utf8CodeUnitCount)
    }
    let rc = withUnsafeTemporaryAllocation(of: swgi_pair.self, capacity: 2) { pairs in
        pairs[0] = swgi_pair(name: bytesOf(type), value: bytesOf(plain))
        pairs[1] = swgi_pair(name: bytesOf(length), value: bytesOf(thirteen))
        return callbacks.pointee.start_response(host, 200, bytesOf(status), pairs.baseAddress, 2)
    }
    guard rc == SWGI_OK else { return 500 }
    let b = bytesOf(body)
    return callbacks.pointee.write(host, b.data, b.len, 0) == SWGI_OK ? SWGI_DONE : 500
}

private let floorVersion: StaticString = "floor"
nonisolated(unsafe) private let floorTable: UnsafeMutablePointer<swgi_app_v1> = {
    let table = UnsafeMutablePointer<swgi_app_v1>.allocate(capacity: 1)
    table.initialize(to: swgi_app_v1(
        abi_version: SWGI_ABI_VERSION, size: UInt32(MemoryLayout<swgi_app_v1>.size),
        swgi_version: UnsafeRawPointer(floorVersion.utf8Start).assumingMemoryBound(to: CChar.self),
        context: nil, handle: floorHandle, flags: SWGI_APP_LAZY_ENVIRON, handle_async: nil))
    return table
}()

@c(swgi_entry_floor) public func floorEntry() -> UnsafeRawPointer { UnsafeRawPointer(floorTable) }
