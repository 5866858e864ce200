// swgi-microbench: the hot Swift paths of a request, with no server.
//
// Each benchmark reports its time per call and `allocs`, the heap
// allocations per call (counted by CMallocCounter, which interposes malloc
// in this executable, the libraries it loads included). The request
// benchmarks load scripts/bench's application (libSWGIBench.so, from
// Tests/Bench) as mod_swgi does and drive it through the C ABI, with the
// environ mod_swgi passed for a real request (captured-environ.txt, its
// PATH_INFO naming the scenario) and a host whose callbacks do nothing but
// count: they measure the whole Swift side of one request.
//
//   scripts/microbench                      every benchmark
//   scripts/microbench --filter request     those whose name matches
import Benchmark
import CMallocCounter
import CSWGIABI
import SWGI
import SWGIHosting
#if canImport(Glibc)
import Glibc
#endif

// MARK: The captured request

/// The captured environ as NUL-terminated C strings that live for the run.
struct CapturedEnviron {
    let pairs: UnsafeMutablePointer<swgi_pair>
    let count: Int

    init(_ entries: [(String, String)]) {
        count = entries.count
        pairs = .allocate(capacity: entries.count)
        for (i, (name, value)) in entries.enumerated() {
            let n = strdup(name)!, v = strdup(value)!
            pairs[i] = swgi_pair(name: swgi_bytes(data: n, len: strlen(n)), value: swgi_bytes(data: v, len: strlen(v)))
        }
    }
}

/// name=value lines next to this file (comments start with #).
func loadCapturedEnviron() -> [(String, String)] {
    let path = #filePath.split(separator: "/").dropLast(2).joined(separator: "/")
    guard let file = fopen("/" + path + "/captured-environ.txt", "r") else {
        fatalError("captured-environ.txt not found next to Benchmarks/Sources")
    }
    defer { fclose(file) }
    var entries: [(String, String)] = []
    var line: UnsafeMutablePointer<CChar>?
    var capacity = 0
    while getline(&line, &capacity, file) > 0 {
        let text = String(cString: line!).trimmingSuffix("\n")
        guard !text.hasPrefix("#"), let eq = text.firstIndex(of: "=") else { continue }
        entries.append((String(text[..<eq]), String(text[text.index(after: eq)...])))
    }
    free(line)
    return entries
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

// MARK: A host that only counts

struct CountingHost {
    let environ: CapturedEnviron
    var status: Int32 = 0
    var bytes = 0
    var body: [UInt8] = []
    var bodyOffset = 0
}

nonisolated(unsafe) let hostCallbacks: UnsafeMutablePointer<swgi_host_v1> = {
    let table = UnsafeMutablePointer<swgi_host_v1>.allocate(capacity: 1)
    table.initialize(to: swgi_host_v1(
        size: UInt32(MemoryLayout<swgi_host_v1>.size),
        read: { host, buf, len in
            let h = host!.assumingMemoryBound(to: CountingHost.self)
            let n = min(len, h.pointee.body.count - h.pointee.bodyOffset)
            h.pointee.body.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buf!).copyMemory(from: raw.baseAddress! + h.pointee.bodyOffset, byteCount: n)
            }
            h.pointee.bodyOffset += n
            return Int64(n)
        },
        start_response: { host, status, _, _, _ in
            host!.assumingMemoryBound(to: CountingHost.self).pointee.status = status
            return SWGI_OK
        },
        write: { host, _, len, _ in
            host!.assumingMemoryBound(to: CountingHost.self).pointee.bytes += len
            return SWGI_OK
        },
        log: { _, _, message, len in
            print("log:", String(decoding: UnsafeRawBufferPointer(start: message, count: len), as: UTF8.self))
        },
        send_file: nil,
        environ_get: { host, name, len, value in
            // As mod_swgi: the variable looked up when asked (here in the captured pairs).
            let environ = host!.assumingMemoryBound(to: CountingHost.self).pointee.environ
            for i in 0..<environ.count where environ.pairs[i].name.len == len {
                if memcmp(environ.pairs[i].name.data, name!, len) == 0 {
                    value!.pointee = environ.pairs[i].value
                    return 1
                }
            }
            return 0
        },
        environ_all: { host, pairs, count in
            let environ = host!.assumingMemoryBound(to: CountingHost.self).pointee.environ
            pairs!.pointee = UnsafePointer(environ.pairs)
            count!.pointee = environ.count
        },
        // Apache's request thread, not an event loop: handle, not handle_async.
        schedule: nil, wait_readable: nil, wait_writable: nil
    ))
    return table
}()

/// Serves one request to `app` (an exported table) as mod_swgi would.
@inline(never)
func serve(_ app: UnsafePointer<swgi_app_v1>, _ environ: CapturedEnviron, body: [UInt8] = []) -> CountingHost {
    var host = CountingHost(environ: environ, body: body)
    withUnsafeMutablePointer(to: &host) { h in
        var request = swgi_request_v1(
            size: UInt32(MemoryLayout<swgi_request_v1>.size), flags: SWGI_FLAG_MULTITHREAD | SWGI_FLAG_MULTIPROCESS,
            host: UnsafeMutableRawPointer(h), callbacks: UnsafePointer(hostCallbacks),
            environ: nil, environ_count: 0, timeout_usec: 0)  // as mod_swgi: looked up through environ_get
        let rc = app.pointee.handle(app.pointee.context, &request)
        precondition(rc == SWGI_DONE, "the application failed: \(rc)")
    }
    return host
}

// MARK: The application of scripts/bench, and the requests

/// libSWGIBench.so, built next to this executable (scripts/microbench builds both).
let bench: UnsafePointer<swgi_app_v1> = {
    var exe = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &exe, exe.count - 1)
    precondition(n > 0, "cannot find this executable's path")
    let dir = String(decoding: exe[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .split(separator: "/").dropLast().joined(separator: "/")
    do {
        return try loadApplication(path: "/" + dir + "/libSWGIBench.so", entry: "application").table
    } catch {
        fatalError("\(error) (scripts/microbench builds it)")
    }
}()

/// Its async application (the async-hello and async-stream scenarios).
let asyncBench: UnsafePointer<swgi_app_v1> = {
    var exe = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &exe, exe.count - 1)
    let dir = String(decoding: exe[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .split(separator: "/").dropLast().joined(separator: "/")
    do {
        return try loadApplication(path: "/" + dir + "/libSWGIBench.so", entry: "async").table
    } catch {
        fatalError("\(error) (scripts/microbench builds it)")
    }
}()

let captured = loadCapturedEnviron()

/// The captured environ for scripts/bench's scenario `name`.
func environ(_ name: String, method: String = "GET", contentLength: Int? = nil) -> CapturedEnviron {
    var entries = captured.filter { !["PATH_INFO", "REQUEST_METHOD", "CONTENT_LENGTH"].contains($0.0) }
    entries += [("PATH_INFO", "/" + name), ("REQUEST_METHOD", method)]
    if let contentLength { entries.append(("CONTENT_LENGTH", String(contentLength))) }
    return CapturedEnviron(entries)
}

nonisolated(unsafe) let hello = environ("hello")
nonisolated(unsafe) let environReads = environ("environ")
nonisolated(unsafe) let headers = environ("headers")
nonisolated(unsafe) let stream = environ("stream")
let uploadBody = [UInt8](repeating: 0x61, count: 1 << 20)
nonisolated(unsafe) let upload = environ("upload", method: "POST", contentLength: uploadBody.count)

/// The keys the `environ` scenario reads.
let environKeys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "SERVER_PROTOCOL", "QUERY_STRING",
                   "HTTP_HOST", "HTTP_USER_AGENT", "REMOTE_ADDR", "SERVER_PORT", "SERVER_NAME"]
/// The head of the `headers` scenario.
let responseHeaders = [("Content-Type", "text/plain"), ("Content-Length", "13")]
    + (0..<10).map { ("X-Bench-\($0)", "value") }

/// Runs `body` as the measured call and adds its allocations to the `allocs`
/// counter, averaged over the benchmark's iterations.
func measured(_ state: inout BenchmarkState, _ body: () -> Void) throws {
    let before = swgi_allocations()
    try state.measure(f: body)
    let after = swgi_allocations()
    state.increment(counter: "allocs", by: Double(after - before) / Double(state.iterations))
}

benchmark("request: hello through the C ABI") { state in
    try measured(&state) { precondition(serve(bench, hello).bytes == 13) }
}
benchmark("request: async hello (a task on this thread)") { state in
    try measured(&state) { precondition(serve(asyncBench, hello).bytes == 13) }
}
benchmark("request: async stream 16 x 64 KiB chunks") { state in
    try measured(&state) { precondition(serve(asyncBench, stream).bytes == 1 << 20) }
}
benchmark("request: environ, 10 keys read") { state in
    try measured(&state) { precondition(serve(bench, environReads).bytes == 200) }
}
benchmark("request: 12 response headers") { state in
    try measured(&state) { precondition(serve(bench, headers).bytes == 13) }
}
benchmark("request: stream 16 x 64 KiB chunks") { state in
    try measured(&state) { precondition(serve(bench, stream).bytes == 1 << 20) }
}
benchmark("request: upload 1 MiB read and echoed") { state in
    try measured(&state) { precondition(serve(bench, upload, body: uploadBody).bytes == 1 << 20) }
}

let ownedBlock: EnvironBlock = {
    var bytes = 0
    for (name, value) in captured { bytes += name.utf8.count + value.utf8.count }
    return EnvironBlock(capacity: captured.count, byteCount: bytes) { builder in
        for (name, value) in captured {
            var name = name, value = value
            name.withUTF8 { n in value.withUTF8 { v in builder.append(name: UnsafeRawBufferPointer(n), value: UnsafeRawBufferPointer(v)) } }
        }
    }
}()

benchmark("environ: copy of 36 captured variables (a kept environ)") { state in
    try measured(&state) {
        var bytes = 0
        for i in 0..<hello.count { bytes += hello.pairs[i].name.len + hello.pairs[i].value.len }
        let block = EnvironBlock(capacity: hello.count, byteCount: bytes) { builder in
            for i in 0..<hello.count {
                let p = hello.pairs[i]
                builder.append(name: UnsafeRawBufferPointer(start: p.name.data, count: p.name.len),
                               value: UnsafeRawBufferPointer(start: p.value.data, count: p.value.len))
            }
        }
        precondition(block.count > 30)
    }
}
benchmark("environ: 10 lookups in a copied environ") { state in
    try measured(&state) {
        var total = 0
        for key in environKeys { total += ownedBlock.string(for: key)?.utf8.count ?? 0 }
        precondition(total > 0)
    }
}
benchmark("headers: validate 12 response headers") { state in
    try measured(&state) {
        let head = try? ResponseHead(status: "200 OK", headers: responseHeaders)
        precondition(head?.contentLength == 13)
    }
}
benchmark("query: parse 6 parameters") { state in
    try measured(&state) {
        let q = QueryParameters(parsing: "q=swift+web&page=2&sort=date&lang=en&x=%E2%9C%93&empty=")
        precondition(q["page"] == "2")
    }
}
benchmark("form: parse a 6-field urlencoded body") { state in
    let body = Array("name=Alex+Smith&email=alex%40example.com&age=42&city=K%C3%B6ln&agree=on&note=".utf8)
    try measured(&state) {
        let environ = Environ(variables: ["CONTENT_TYPE": "application/x-www-form-urlencoded",
                                          "CONTENT_LENGTH": String(body.count)],
                              input: RequestInput(bytes: body))
        precondition((try? environ.form())?["city"] == "Köln")
    }
}
benchmark("cookies: parse 4 cookies") { state in
    try measured(&state) {
        let c = Cookies(header: "session=abc123; theme=dark; lang=en; _ga=GA1.2.3.4")
        precondition(c["theme"] == "dark")
    }
}

Benchmark.main()
