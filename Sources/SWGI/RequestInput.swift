internal import _Concurrency
/// Where a ``RequestInput`` gets its bytes: the server side of `swgi.input`.
public protocol InputSource: AnyObject {
    /// Reads up to `buffer.count` bytes of the request body into `buffer`.
    /// Returns the count read, 0 at the end of the body. Throws when the body
    /// cannot be read (an ``SWGIError`` with code `.inputFailed`).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int

    /// The executor whose thread may read (see ``RequestExecutor``): async
    /// reads hop there. `nil` (the default): read on any thread.
    var requestExecutor: RequestExecutor? { get }

    /// True for a server that must not block (an event loop): `read(into:)`
    /// throws an ``SWGIError`` with code `.wouldBlock` instead of waiting,
    /// and async reads await ``waitReadable()`` before each read. False
    /// (the default): reads wait for the bytes.
    var readsWithoutWaiting: Bool { get }

    /// Returns when `read(into:)` would return at once (bytes, the end of
    /// the body, or a failure). Only called when ``readsWithoutWaiting``.
    func waitReadable() async throws
}

extension InputSource {
    public var requestExecutor: RequestExecutor? { nil }
    public var readsWithoutWaiting: Bool { false }
    public func waitReadable() async throws {}
}

/// A server's side of one request as an environ needs it: the source of
/// `swgi.input`, and the error log `swgi.errors` writes to.
package protocol RequestHost: InputSource {
    func logError(_ line: String)
}

/// `swgi.input`: the request body, streamed from the client as it is read.
/// It never yields more than the body (the server stops at `CONTENT_LENGTH`,
/// or at the end of a chunked body).
///
/// ```swift
/// let body = try environ.input.read()        // all of it
/// let first = try environ.input.read(1024)   // up to 1024 bytes
/// while let line = try environ.input.readLine() { ... }
/// for line in environ.input { ... }          // lines; see `error`
/// ```
public final class RequestInput: Sequence {
    private let source: any InputSource
    private var buffer: [UInt8] = []
    private var start = 0
    private var scratch: [UInt8] = []  // one block, reused for every read from the source
    private var atEnd = false
    /// The error that ended reading, if one did. Once set, every read throws it.
    public private(set) var error: (any Error)?

    /// How much is read from the source at a time.
    public static let blockSize = 64 * 1024

    public init(source: any InputSource) {
        self.source = source
    }

    /// An input over bytes in memory (tests, and servers that hold the body).
    public convenience init(bytes: [UInt8]) {
        self.init(source: BytesSource(bytes))
    }

    /// Reads `count` bytes, fewer only at the end of the body; all the rest
    /// when `count` is `nil`. Returns an empty array at the end.
    public func read(_ count: Int? = nil) throws -> [UInt8] {
        try readBytes(count)
    }

    private func readBytes(_ count: Int?) throws -> [UInt8] {
        var out: [UInt8] = []
        let want = count ?? Int.max
        if want <= 0 { return out }
        if start == buffer.count, let count, count <= Self.directLimit {
            return try readDirect(count)
        }
        let buffered = buffer.count - start
        if buffered > 0 {
            let n = Swift.min(buffered, want)
            out.append(contentsOf: buffer[start..<(start + n)])
            consume(n)
        }
        while out.count < want, try fill(max: want - out.count) {
            let n = Swift.min(buffer.count - start, want - out.count)
            out.append(contentsOf: buffer[start..<(start + n)])
            consume(n)
        }
        return out
    }

    /// Reads up to `buffer.count` bytes into `buffer`, fewer only at the end of
    /// the body; returns the count (0 at the end). Bytes go from the server
    /// straight into `buffer` when nothing is buffered.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        let buffered = Swift.min(self.buffer.count - start, buffer.count)
        if buffered > 0 {
            self.buffer.withUnsafeBytes { raw in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[start..<(start + buffered)]))
            }
            consume(buffered)
            filled = buffered
        }
        while filled < buffer.count {
            let n = try readSource(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if n == 0 { break }
            filled += n
        }
        return filled
    }

    /// The largest `read(n)` that reads straight into the array it returns.
    static let directLimit = 1 << 20

    /// `read(count)` with nothing buffered: the server's bytes go straight
    /// into the array returned, with no staging copy.
    private func readDirect(_ count: Int) throws -> [UInt8] {
        var failure: (any Error)?
        let out = [UInt8](unsafeUninitializedCapacity: count) { storage, initialized in
            initialized = 0
            while initialized < count {
                do {
                    let n = try readSource(into: UnsafeMutableRawBufferPointer(
                        UnsafeMutableBufferPointer(rebasing: storage[initialized..<count])))
                    if n == 0 { break }
                    initialized += n
                } catch {
                    failure = error
                    break
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// One read from the source; records the end and errors.
    private func readSource(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let error { throw error }
        if atEnd { return 0 }
        do {
            let n = try source.read(into: buffer)
            if n == 0 { atEnd = true }
            return n
        } catch {
            self.error = error
            throw error
        }
    }

    /// Reads one line, with its `\n`; the last line may lack it. `nil` at the
    /// end of the body. `limit` caps the line's length (the rest stays for the
    /// next read).
    public func readLine(limit: Int? = nil) throws -> [UInt8]? {
        try readLineBytes(limit: limit)
    }

    private func readLineBytes(limit: Int?) throws -> [UInt8]? {
        let cap = limit ?? Int.max
        var searched = 0  // bytes after `start` known to hold no newline
        while true {
            let available = buffer.count - start
            let window = Swift.min(available, cap)
            if let nl = buffer[(start + searched)..<(start + window)].firstIndex(of: UInt8(ascii: "\n")) {
                return take(nl - start + 1)
            }
            if available >= cap { return take(cap) }
            searched = window
            guard try fill(max: Self.blockSize) else {
                return available > 0 ? take(available) : nil
            }
        }
    }

    /// All remaining lines.
    public func readLines() throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        while let line = try readLineBytes(limit: nil) { lines.append(line) }
        return lines
    }

    // Async reads, for async applications: the same results, read on the
    // request's thread (see ``RequestExecutor``); they throw
    // `CancellationError` once the request's task is cancelled.

    /// ``read(_:)``, awaited.
    public func read(_ count: Int? = nil) async throws -> [UInt8] {
        let want = count ?? Int.max
        try await bufferWithoutWaiting { [self] in buffer.count - start >= want }
        return try await RequestExecutor.onRequestThread(source.requestExecutor) { try readBytes(count) }
    }

    /// ``readLine(limit:)``, awaited.
    public func readLine(limit: Int? = nil) async throws -> [UInt8]? {
        let cap = limit ?? Int.max
        var searched = 0  // bytes after `start` known to hold no newline
        try await bufferWithoutWaiting { [self] in
            let window = Swift.min(buffer.count - start, cap)
            if window == cap || buffer[(start + searched)..<(start + window)].contains(UInt8(ascii: "\n")) { return true }
            searched = window
            return false
        }
        return try await RequestExecutor.onRequestThread(source.requestExecutor) { try readLineBytes(limit: limit) }
    }

    /// From a source that must not block: buffers what arrives, awaiting
    /// each block, until `enough` (or the end, or a failure), so that the
    /// sync read that follows is served without waiting.
    private func bufferWithoutWaiting(until enough: () -> Bool) async throws {
        guard source.readsWithoutWaiting else { return }
        while error == nil, !atEnd, !enough() {
            try Task.checkCancellation()
            try await source.waitReadable()
            _ = try await RequestExecutor.onRequestThread(source.requestExecutor) { try fill(max: Self.blockSize) }
        }
    }

    /// ``readLines()``, awaited.
    public func readLines() async throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        while let line = try await readLine() { lines.append(line) }
        return lines
    }

    /// Lines, as ``readLine(limit:)`` gives them. A read error ends the
    /// iteration; it is kept in ``error`` and thrown by the next read.
    public func makeIterator() -> AnyIterator<[UInt8]> {
        AnyIterator { [self] in (try? self.readLine()) ?? nil }
    }

    private func take(_ n: Int) -> [UInt8] {
        let line = Array(buffer[start..<(start + n)])
        consume(n)
        return line
    }

    private func consume(_ n: Int) {
        start += n
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
    }

    /// Appends up to `max` (at most a block) more bytes to the buffer.
    /// Returns false at the end of the body.
    private func fill(max: Int) throws -> Bool {
        if let error { throw error }
        if atEnd { return false }
        if start > 0 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        let want = Swift.min(max, Self.blockSize)
        if scratch.isEmpty {
            scratch = [UInt8](repeating: 0, count: Self.blockSize)
        }
        let n: Int
        do {
            n = try scratch.withUnsafeMutableBytes { raw in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<want]))
            }
        } catch {
            self.error = error
            throw error
        }
        buffer.append(contentsOf: scratch[0..<n])
        if n == 0 { atEnd = true }
        return n > 0
    }
}

/// An ``InputSource`` over bytes in memory.
public final class BytesSource: InputSource {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = Swift.min(buffer.count, bytes.count - offset)
        if n > 0 {
            bytes[offset..<(offset + n)].withUnsafeBytes { buffer.copyMemory(from: $0) }
            offset += n
        }
        return n
    }
}
