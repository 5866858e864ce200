// Applications for the integration tests: one library, several entry points
// (which also exercises SWGIEntryPoint and entry=NAME).
import SWGIBridge
import SWGIStatic

#if canImport(Glibc)
import Glibc
#endif

struct Failure: Error, CustomStringConvertible {
    let description: String
}

/// Reads the body in blocks and answers its length and a checksum, with the
/// process's memory growth: proof that the body is streamed, not held.
struct Echo: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let before = residentKiB()
        var total = 0
        var sum: UInt32 = 0
        while true {
            let block = try environ.input.read(64 * 1024)
            if block.isEmpty { break }
            total += block.count
            for b in block { sum &+= UInt32(b) }
        }
        let growth = max(0, residentKiB() - before)
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return ["bytes=\(total) sum=\(sum) growth_kib=\(growth)\n"]
    }
}

/// Sends the body back, line by line through readLine (for small bodies).
struct Lines: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        var lines: [Chunk] = []
        while let line = try environ.input.readLine() {
            lines.append(Chunk("[\(line.count)]"))
        }
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return Body(lines + ["\n"])
    }
}

/// ?n=COUNT&delay=MS&id=ID&lead=MS: COUNT chunks, a pause before each after
/// the first; with lead, first an empty chunk after a pause (the head must
/// wait for the first non-empty chunk); logs "stream ID closed" when closed.
struct Stream: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let query = environ.query
        let count = Int(query["n"] ?? "") ?? 5
        let delay = Int(query["delay"] ?? "") ?? 0
        let id = query["id"] ?? "-"
        var lead = Int(query["lead"] ?? "") ?? 0
        let errors = environ.errors
        var i = 0
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return Body(next: {
            if lead > 0 {
                usleep(UInt32(lead) * 1000)
                lead = 0
                return ""
            }
            guard i < count else { return nil }
            if i > 0 && delay > 0 { usleep(UInt32(delay) * 1000) }
            i += 1
            return "chunk \(i)\n"
        }, onClose: {
            errors.writeLine("stream \(id) closed after \(i) chunks")
        })
    }
}

/// ?how=...: each a way for an application to get its response wrong.
struct Misbehave: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let how = environ.query["how"] ?? ""
        let errors = environ.errors
        let closed = { errors.writeLine("misbehave \(how) closed") }
        let text = [("Content-Type", "text/plain")]
        switch how {
        case "throw-before":
            throw Failure(description: "boom before headers")
        case "throw-after":
            try startResponse("200 OK", text)
            var n = 0
            return Body(next: {
                n += 1
                if n == 1 { return "partial\n" }
                throw Failure(description: "boom after headers")
            }, onClose: closed)
        case "bad-status":
            try startResponse("200OK", text)
        case "crlf-header":
            try startResponse("200 OK", text + [("X-Injected", "a\r\nSet-Cookie: evil=1")])
        case "ctl-header":
            try startResponse("200 OK", text + [("X-Bell", "ring\u{07}")])
        case "hop-header":
            try startResponse("200 OK", text + [("Connection", "close")])
        case "bad-name":
            try startResponse("200 OK", text + [("Bad Name", "x")])
        case "twice":
            try startResponse("200 OK", text)
            try startResponse("201 Created", text)
        case "exc-info":
            try startResponse("200 OK", text)
            try startResponse("503 Service Unavailable", text, excInfo: Failure(description: "changed mind"))
            return ["replaced\n"]
        case "no-start":
            return Body(["no start\n"], onClose: closed)
        case "no-type":
            // Served as it is; a validator reports the missing Content-Type.
            try startResponse("200 OK", [])
            return ["no type\n"]
        case "long":
            try startResponse("200 OK", text + [("Content-Length", "5")])
            return Body(["0123456789"], onClose: closed)
        case "short":
            try startResponse("200 OK", text + [("Content-Length", "10")])
            return Body(next: { nil }, onClose: closed)
        case "short-streamed":
            try startResponse("200 OK", text + [("Content-Length", "10")])
            var sent = false
            return Body(next: {
                if sent { return nil }
                sent = true
                return "01234"
            }, onClose: closed)
        case "empty-chunks":
            try startResponse("200 OK", text)
            var n = 0
            return Body(next: {
                n += 1
                return n <= 1000 ? "" : nil
            }, onClose: closed)
        case "tiny-chunks":
            try startResponse("200 OK", text)
            var n = 0
            return Body(next: {
                n += 1
                return n <= 100_000 ? "x" : nil
            }, onClose: closed)
        case "read-past-end":
            // Reads the body, then goes on reading: the end stays the end.
            let input = environ.input
            let first = try input.read()
            var more = 0
            for _ in 0..<1000 { more += try input.read(4096).count + (try input.readLine()?.count ?? 0) }
            try startResponse("200 OK", text)
            return ["first=\(first.count) more=\(more)\n"]
        case "block":
            // Takes longer than the client waits; then tries to answer.
            var slept = 0
            try startResponse("200 OK", text)
            return Body(next: {
                guard slept < 8 else { return nil }
                slept += 1
                usleep(500_000)
                return "tick\n"
            }, onClose: closed)
        default:
            try startResponse("400 Bad Request", text)
            return ["unknown how\n"]
        }
        return Body(["unreachable\n"], onClose: closed)
    }
}

/// ?status=NNN: that status, with a body the server must drop for 204/304;
/// &reason=TEXT: that reason phrase instead of the usual one.
struct Status: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let query = environ.query
        let code = query["status"] ?? "200"
        let reasons = ["200": "OK", "204": "No Content", "304": "Not Modified", "404": "Not Found", "201": "Created"]
        let reason = query["reason"] ?? reasons[code] ?? "Other"
        try startResponse("\(code) \(reason)", [("Content-Type", "text/plain"), ("X-Status", code)])
        return ["body for \(code)\n"]
    }
}

/// Content-Type and Content-Length named in other cases than usual: they
/// are still Apache's own (the type its filters choose by, the length it
/// writes), and other names keep the case the application gave them.
struct HeaderCase: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try startResponse("200 OK", [("content-TYPE", "application/x-swgi-case"), ("CONTENT-length", "100"),
                                     ("x-Lower", "kept")])
        // 100 bytes: mod_deflate leaves smaller responses alone.
        return [Chunk(String(repeating: "case\n", count: 20))]
    }
}

/// Writes through the imperative write() and through swgi.errors.
struct Writes: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let write = try startResponse("200 OK", [("Content-Type", "text/plain")])
        try write("one\n")
        try write("two\n")
        var log = environ.errors
        print("note from the application", to: &log)
        environ.errors.write("unterminated last line")
        return ["three\n"]
    }
}

/// Reports the SWGI library it was built with (the version-skew test).
struct Version: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return ["\(SWGI.libraryVersion) \(MemoryLayout<Environ>.size)\n"]
    }
}

/// The files under SetEnv STATIC_ROOT.
struct Files: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try StaticFiles(root: environ["STATIC_ROOT"] ?? "/nonexistent")(environ, startResponse)
    }
}

/// A file body that middleware iterates (upper-cased), so no file bucket.
struct FileUpper: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        guard let wrap = environ.fileWrapper else { throw Failure(description: "no swgi.file_wrapper") }
        let body = try wrap(path: (environ["STATIC_ROOT"] ?? "") + "/hello.txt")
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return body.map { Chunk($0.description.uppercased()) }
    }
}

/// Keeps the environ of a `?keep` request past the request's end; a later
/// request on the same connection (so the same process) shows what the kept
/// copy still says. `?keepcopy` keeps only a changed copy (middleware's
/// way: the request's own environ is dropped, its variables still read by
/// the copy). `?thread` reads the environ and the body on another thread
/// while the request runs. `?keepinput` keeps `swgi.input` unread;
/// `?readkept` then reads what the kept stream gives (it must be nothing of
/// this request's body: the connection it reads from is the earlier
/// request's, not reused while kept) and then its own body.
struct Kept: Application {
    nonisolated(unsafe) static var kept: Environ?
    nonisolated(unsafe) static var keptInput: RequestInput?

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        var lines: [String] = []
        switch environ.queryString {
        case "keep":
            Kept.kept = environ
            lines.append("kept")
        case "keepinput":
            Kept.keptInput = environ.input
            lines.append("kept")
        case "readkept":
            do {
                let bytes = try Kept.keptInput?.read() ?? []
                lines.append("kept input: \(bytes.count) bytes")
            } catch {
                lines.append("kept input: error")
            }
            lines.append("own body: \((try? environ.input.read().count) ?? -1) bytes")
        case "keepcopy":
            var copy = environ
            copy["HTTP_X_CHANGED"] = "changed"
            Kept.kept = copy
            lines.append("kept")
        case "thread":
            nonisolated(unsafe) var seen = ""
            onAnotherThread {
                let body = (try? environ.input.read()) ?? []
                seen = "\(environ["PATH_TRANSLATED"] ?? "-") \(environ.pathInfo) body=\(body.count)"
            }
            lines.append(seen)
        default:
            let kept = Kept.kept
            lines.append(kept?["PATH_TRANSLATED"] ?? "-")
            lines.append(kept?["PATH_INFO"] ?? "-")
            lines.append(kept?["HTTP_X_KEPT"] ?? "-")
            lines.append(kept?["HTTP_X_CHANGED"] ?? "-")
            lines.append(String(kept?.variables.count ?? 0))
        }
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return [Chunk(lines.joined(separator: "\n") + "\n")]
    }
}

/// Looks variables up one by one before anything enumerates the environ,
/// then enumerates it, and answers where the two disagree: mod_swgi
/// computes a looked-up variable on its own (swgi_environ_get), apart from
/// the whole environ (swgi_environ_all). The names: a fixed list, plus those
/// the request names in X-Lookup-Names (comma-separated).
struct Lookups: Application {
    static let names = [
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING", "REQUEST_URI",
        "SERVER_PROTOCOL", "GATEWAY_INTERFACE", "SERVER_NAME", "SERVER_PORT", "SERVER_ADDR", "SERVER_ADMIN",
        "SERVER_SOFTWARE", "SERVER_SIGNATURE", "REMOTE_ADDR", "REMOTE_PORT", "REMOTE_HOST", "REMOTE_USER",
        "REMOTE_IDENT", "AUTH_TYPE", "DOCUMENT_ROOT", "CONTEXT_PREFIX", "CONTEXT_DOCUMENT_ROOT", "REQUEST_SCHEME",
        "SCRIPT_FILENAME", "HTTPS", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_HOST", "HTTP_AUTHORIZATION",
        "HTTP_PROXY", "HTTP_PROXY_AUTHORIZATION", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "PATH",
        "LD_LIBRARY_PATH", "mod_swgi.version", "mod_swgi.application_path", "mod_swgi.entry_point",
        "mod_swgi.process_group", "mod_swgi.request_id", "mod_swgi.connection_id", "NOPE", "", "HTTP_",
        String(repeating: "X", count: 300),
    ]

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let extra = (environ["HTTP_X_LOOKUP_NAMES"] ?? "").split(separator: ",").map(String.init)
        let names = Self.names + extra
        let looked = names.map { ($0, environ[$0]) }
        let all = environ.variables
        var lines = ["checked \(names.count)"]
        for (name, value) in looked where value != all[name] {
            lines.append("MISMATCH \(name): lookup \(value ?? "(none)") all \(all[name] ?? "(none)")")
        }
        lines.append("keys " + all.keys.sorted().joined(separator: ","))
        try startResponse("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [Chunk(lines.joined(separator: "\n") + "\n")]
    }
}

/// Runs `body` on a new thread and waits for it.
func onAnotherThread(_ body: @escaping () -> Void) {
    final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    pthread_create(&thread, nil, { arg in
        let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    pthread_join(thread, nil)
}

/// What daemon mode's tests ask of the process that serves them:
/// `?sleep=MS` waits before it answers; `?trap` crashes the process (a Swift
/// trap); `?overflow` overflows the stack; `?trap-after-start` sends the head
/// and a first chunk, then traps;
/// `?grow=MIB` keeps that much more memory for the life of the process;
/// `?linger=MS` writes the whole answer (with its Content-Length, so the
/// client has it all) and only then waits, before the request ends.
/// The answer: `pid= uid= gid= cwd= umask= multithread= multiprocess= group=
/// waited=` lines; `waited` is the microseconds from when Apache read the
/// request (mod_swgi.request_start) to when the application began it.
struct DaemonProbe: Application {
    nonisolated(unsafe) static var kept: [[UInt8]] = []

    /// Recursion with 4 KiB of stack a level: `?overflow` exhausts the stack (SIGSEGV).
    static func deeper(_ n: Int) -> Int {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { buffer in
            buffer.initialize(repeating: UInt8(truncatingIfNeeded: n))
            return n <= 0 ? 0 : deeper(n - 1) &+ Int(buffer[n % 4096])
        }
    }

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        var now = timeval()
        gettimeofday(&now, nil)
        let began = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_usec)
        let waited = began - (Int64(environ["mod_swgi.request_start"] ?? "") ?? began)
        let query = environ.query
        if let ms = Int(query["sleep"] ?? "") { usleep(UInt32(ms) * 1000) }
        if query["trap"] != nil { fatalError("DaemonProbe: trap requested") }
        if query["overflow"] != nil { _ = DaemonProbe.deeper(Int(query["overflow"] ?? "") ?? Int.max) }
        if let mib = Int(query["grow"] ?? "") {
            DaemonProbe.kept.append([UInt8](repeating: 1, count: mib << 20))
        }
        if query["trap-after-start"] != nil {
            let write = try startResponse("200 OK", [("Content-Type", "text/plain")])
            try write("first chunk\n")
            fatalError("DaemonProbe: trap after the response began")
        }
        var cwd = [CChar](repeating: 0, count: 4096)
        let mask = umask(0o022)
        umask(mask)
        let lines = [
            "pid=\(getpid())", "uid=\(getuid())", "gid=\(getgid())",
            "cwd=\(getcwd(&cwd, cwd.count) != nil ? String(decoding: cwd.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?")",
            "umask=\(String(mask, radix: 8))",
            "multithread=\(environ.multithread)", "multiprocess=\(environ.multiprocess)",
            "group=\(environ["mod_swgi.process_group"] ?? "-")",
            "waited=\(waited)",
        ]
        let text = lines.joined(separator: "\n") + "\n"
        if let ms = Int(query["linger"] ?? "") {
            let write = try startResponse("200 OK", [("Content-Type", "text/plain"),
                                                     ("Content-Length", String(text.utf8.count))])
            try write(Chunk(text))
            usleep(UInt32(ms) * 1000)
            return []
        }
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return [Chunk(text)]
    }
}

func residentKiB() -> Int { procStatus("VmRSS:") }

/// A number from /proc/self/status (`VmRSS:` in KiB, `Threads:`), 0 if absent.
func procStatus(_ field: String) -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), f) != nil {
        let text = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix(field) {
            return Int(text.dropFirst(field.utf8.count).filter { $0.isNumber }) ?? 0
        }
    }
    return 0
}

@c(swgi_entry_echo) public func echo() -> UnsafeRawPointer { exportApplication(Echo()) }
@c(swgi_entry_lines) public func lines() -> UnsafeRawPointer { exportApplication(Lines()) }
@c(swgi_entry_stream) public func stream() -> UnsafeRawPointer { exportApplication(Stream()) }
@c(swgi_entry_misbehave) public func misbehave() -> UnsafeRawPointer { exportApplication(Misbehave()) }
@c(swgi_entry_status) public func status() -> UnsafeRawPointer { exportApplication(Status()) }
@c(swgi_entry_header_case) public func headerCase() -> UnsafeRawPointer { exportApplication(HeaderCase()) }
@c(swgi_entry_writes) public func writes() -> UnsafeRawPointer { exportApplication(Writes()) }
@c(swgi_entry_files) public func files() -> UnsafeRawPointer { exportApplication(Files()) }
@c(swgi_entry_file_upper) public func fileUpper() -> UnsafeRawPointer { exportApplication(FileUpper()) }
@c(swgi_entry_lookups) public func lookups() -> UnsafeRawPointer { exportApplication(Lookups()) }
@c(swgi_entry_kept) public func kept() -> UnsafeRawPointer { exportApplication(Kept()) }
@c(swgi_entry_version) public func version() -> UnsafeRawPointer { exportApplication(Version()) }
@c(swgi_entry_daemon) public func daemonProbe() -> UnsafeRawPointer { exportApplication(DaemonProbe()) }
