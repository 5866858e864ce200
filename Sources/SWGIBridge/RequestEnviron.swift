internal import CSWGIABI
import SWGI
#if canImport(Glibc)
import Glibc
#endif

/// The environ's variables, read in place from the pairs the host passed:
/// nothing is copied or decoded until the application asks for a key.
///
/// The pairs live in the host's request (Apache's request pool), so they
/// are read only while the request runs, under the connection's lock. An
/// application that keeps the environ past the request gets a copy, made by
/// ``keepAfterRequest()`` before the request ends.
final class RequestEnviron: EnvironSource, @unchecked Sendable {
    private let host: HostConnection
    private let pairs: UnsafePointer<swgi_pair>?
    private let count: Int
    /// The copy made for after the request (under the host's lock).
    private var kept: EnvironBlock?

    init(host: HostConnection, pairs: UnsafePointer<swgi_pair>?, count: Int) {
        self.host = host
        self.pairs = pairs
        self.count = count
        super.init()
    }

    /// Reads the pairs in place while the request runs, else the kept copy.
    private func read<R>(_ inPlace: (UnsafeBufferPointer<swgi_pair>) -> R,
                         _ afterwards: (EnvironBlock) -> R) -> R? {
        host.withLock { running in
            if let kept { return afterwards(kept) }
            guard running else { return nil }
            return inPlace(UnsafeBufferPointer(start: pairs, count: pairs == nil ? 0 : count))
        }
    }

    /// The index of the first pair named `key`.
    private static func index(of key: String, in pairs: UnsafeBufferPointer<swgi_pair>) -> Int? {
        var key = key
        return key.withUTF8 { k -> Int? in
            for i in pairs.indices where pairs[i].name.len == k.count {
                if k.isEmpty || memcmp(pairs[i].name.data, k.baseAddress!, k.count) == 0 { return i }
            }
            return nil
        }
    }

    /// The bytes of a value: in place, or computed by the host if deferred.
    private func withValue<R>(_ pair: swgi_pair, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        if pair.value.len == deferredLength {
            let name = String(decoding: pair.name.bytes, as: UTF8.self)
            guard let value = host.deferredValueLocked(name) else { return nil }
            return value.withUnsafeBytes(body)
        }
        return body(UnsafeRawBufferPointer(pair.value.bytes))
    }

    override func string(for key: String) -> String? {
        read({ pairs in
            guard let i = Self.index(of: key, in: pairs) else { return nil }
            return withValue(pairs[i]) { String(decoding: $0.bindMemory(to: UInt8.self), as: UTF8.self) }
        }, { $0.string(for: key) }) ?? nil
    }

    override func bytes(for key: String) -> [UInt8]? {
        read({ pairs in
            guard let i = Self.index(of: key, in: pairs) else { return nil }
            return withValue(pairs[i]) { Array($0) }
        }, { $0.bytes(for: key) }) ?? nil
    }

    override func dictionary() -> [String: String] {
        (read({ pairs in Self.copy(pairs, host: host).dictionary() }, { $0.dictionary() }) ?? nil) ?? [:]
    }

    override func undecodableKeys() -> [String] {
        (read({ pairs in Self.copy(pairs, host: host).undecodableKeys() }, { $0.undecodableKeys() }) ?? nil) ?? []
    }

    /// Gives the environ a copy of its variables (deferred values computed)
    /// that outlives the request. Called on the request's last moments.
    func keepAfterRequest() {
        host.withLock { running in
            if running && kept == nil {
                kept = Self.copy(UnsafeBufferPointer(start: pairs, count: pairs == nil ? 0 : count), host: host)
            }
        }
    }

    /// The pairs copied into a block of their own (with the host's lock held).
    private static func copy(_ pairs: UnsafeBufferPointer<swgi_pair>, host: HostConnection) -> EnvironBlock {
        var deferred: [Int: [UInt8]] = [:]
        var byteCount = 0
        for (i, pair) in pairs.enumerated() {
            byteCount += pair.name.len
            if pair.value.len == deferredLength {
                let name = String(decoding: pair.name.bytes, as: UTF8.self)
                if let value = host.deferredValueLocked(name) {
                    deferred[i] = value
                    byteCount += value.count
                }
            } else {
                byteCount += pair.value.len
            }
        }
        return EnvironBlock(capacity: pairs.count, byteCount: byteCount) { builder in
            for (i, pair) in pairs.enumerated() {
                if pair.value.len != deferredLength {
                    builder.append(name: UnsafeRawBufferPointer(pair.name.bytes),
                                   value: UnsafeRawBufferPointer(pair.value.bytes))
                } else if let value = deferred[i] {
                    value.withUnsafeBytes { builder.append(name: UnsafeRawBufferPointer(pair.name.bytes), value: $0) }
                }
            }
        }
    }
}

extension swgi_bytes {
    /// The bytes (none for a deferred value).
    var bytes: UnsafeBufferPointer<UInt8> {
        guard let data, len != deferredLength else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: len)
    }
}
