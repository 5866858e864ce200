internal import CSWGIABI
import SWGI
#if canImport(Glibc)
import Glibc
#endif

/// The host's side of one request, seen from Swift: the request body
/// (`InputSource`), the response (`ResponseTransport`), the log and the
/// deferred environ values.
///
/// The host's callbacks may be used from any thread while `handle()` runs,
/// but never two at once (swgi_abi.h): every call into the host holds
/// `lock`, and after `close()` (when `handle()` returns) none is made.
final class HostConnection: InputSource, ResponseTransport, @unchecked Sendable {
    private let host: UnsafeMutableRawPointer?
    private let callbacks: UnsafePointer<swgi_host_v1>
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var closed = false
    /// Deferred environ values already computed, by name (under `lock`).
    private var computed: [String: [UInt8]?] = [:]

    init(host: UnsafeMutableRawPointer?, callbacks: UnsafePointer<swgi_host_v1>) {
        self.host = host
        self.callbacks = callbacks
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` holding the lock, if the request is still running.
    private func locked<R>(_ body: () throws -> R) rethrows -> R? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if closed { return nil }
        return try body()
    }

    /// The request is over: the host's state is gone.
    func close() {
        pthread_mutex_lock(lock)
        closed = true
        pthread_mutex_unlock(lock)
    }

    var canDefer: Bool {
        Int(callbacks.pointee.size) >= MemoryLayout<swgi_host_v1>.size && callbacks.pointee.environ_value != nil
    }

    /// A deferred environ value, computed by the host once and then kept.
    /// After the request, only values computed before it ended are known.
    func deferredValue(_ name: String) -> [UInt8]? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if let known = computed[name] { return known }
        if closed { return nil }
        var value = swgi_bytes(data: nil, len: 0)
        var key = name
        let rc = key.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { p in
                callbacks.pointee.environ_value(host, p.baseAddress, p.count, &value)
            }
        }
        let result: [UInt8]? = rc == SWGI_OK && value.data != nil
            ? Array(UnsafeRawBufferPointer(start: value.data, count: value.len))
            : nil
        computed[name] = .some(result)
        return result
    }

    /// Computes every deferred value of the request now, while the host can.
    func resolveDeferredValues(of request: swgi_request_v1) {
        guard canDefer, let pairs = request.environ else { return }
        for i in 0..<request.environ_count where pairs[i].value.len == deferredLength {
            let name = pairs[i].name
            _ = deferredValue(String(decoding: UnsafeRawBufferPointer(start: name.data, count: name.len)
                .bindMemory(to: UInt8.self), as: UTF8.self))
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let n = locked {
            callbacks.pointee.read(host, base.assumingMemoryBound(to: CChar.self), buffer.count)
        } ?? -1
        if n < 0 {
            throw SWGIError(.inputFailed, "the request body could not be read (the server's log says why)")
        }
        return Int(n)
    }

    func sendHead(_ head: ResponseHead) throws {
        // One buffer holds every string, so the pairs can point into it for the call.
        var storage: [UInt8] = Array(head.statusLine.utf8)
        var spans: [(name: Range<Int>, value: Range<Int>)] = []
        spans.reserveCapacity(head.headers.count)
        for (name, value) in head.headers {
            let n = storage.count
            storage.append(contentsOf: name.utf8)
            let v = storage.count
            storage.append(contentsOf: value.utf8)
            spans.append((n..<v, v..<storage.count))
        }
        let statusLength = head.statusLine.utf8.count
        let rc = storage.withUnsafeBytes { raw -> Int32 in
            let base = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            let pairs = spans.map { span in
                swgi_pair(name: swgi_bytes(data: base + span.name.lowerBound, len: span.name.count),
                          value: swgi_bytes(data: base + span.value.lowerBound, len: span.value.count))
            }
            return pairs.withUnsafeBufferPointer { p in
                locked {
                    callbacks.pointee.start_response(host, Int32(head.status),
                                                     swgi_bytes(data: base, len: statusLength),
                                                     p.baseAddress, p.count)
                } ?? SWGI_ECLIENT
            }
        }
        try check(rc)
    }

    func sendBody(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try check(locked {
            callbacks.pointee.write(host, base.assumingMemoryBound(to: CChar.self), bytes.count, flush ? 1 : 0)
        } ?? SWGI_ECLIENT)
    }

    func sendFile(_ region: FileRegion) throws -> Bool {
        // A host built before send_file existed: the body is iterated instead.
        guard Int(callbacks.pointee.size) >= MemoryLayout<swgi_host_v1>.size,
              let sendFile = callbacks.pointee.send_file else { return false }
        var path = region.path
        let rc = path.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { p in
                locked {
                    sendFile(host, p.baseAddress, p.count, UInt64(region.offset), UInt64(region.length), 1)
                } ?? SWGI_ECLIENT
            }
        }
        if rc == SWGI_EFILE {
            throw SWGIError(.badRequest, "the server could not open \(region.path)")
        }
        try check(rc)
        return true
    }

    func log(_ level: LogLevel, _ message: String) {
        var message = message
        message.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { p in
                _ = locked {
                    callbacks.pointee.log(host, Int32(level.rawValue), p.baseAddress, p.count)
                }
            }
        }
    }

    private func check(_ rc: Int32) throws {
        switch rc {
        case SWGI_OK: return
        case SWGI_ECLIENT: throw SWGIError(.clientDisconnected, "the client has disconnected")
        default: throw SWGIError(.responseNotStarted, "the server refused the response (code \(rc))")
        }
    }
}
