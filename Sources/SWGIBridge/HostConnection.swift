internal import CSWGIABI
import SWGI

/// The host's side of one request, seen from Swift: the request body
/// (`InputSource`), the response (`ResponseTransport`) and the log.
final class HostConnection: InputSource, ResponseTransport {
    private let host: UnsafeMutableRawPointer?
    private let callbacks: UnsafePointer<swgi_host_v1>

    init(host: UnsafeMutableRawPointer?, callbacks: UnsafePointer<swgi_host_v1>) {
        self.host = host
        self.callbacks = callbacks
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let n = callbacks.pointee.read(host, base.assumingMemoryBound(to: CChar.self), buffer.count)
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
                callbacks.pointee.start_response(host, Int32(head.status),
                                                 swgi_bytes(data: base, len: statusLength),
                                                 p.baseAddress, p.count)
            }
        }
        try check(rc)
    }

    func sendBody(_ bytes: UnsafeRawBufferPointer, flush: Bool) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try check(callbacks.pointee.write(host, base.assumingMemoryBound(to: CChar.self), bytes.count, flush ? 1 : 0))
    }

    func sendFile(_ region: FileRegion) throws -> Bool {
        // A host built before send_file existed: the body is iterated instead.
        guard Int(callbacks.pointee.size) >= MemoryLayout<swgi_host_v1>.size,
              let sendFile = callbacks.pointee.send_file else { return false }
        var path = region.path
        let rc = path.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { p in
                sendFile(host, p.baseAddress, p.count, UInt64(region.offset), UInt64(region.length), 1)
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
                callbacks.pointee.log(host, Int32(level.rawValue), p.baseAddress, p.count)
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
