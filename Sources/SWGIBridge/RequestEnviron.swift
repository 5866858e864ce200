internal import CSWGIABI
import SWGI
#if canImport(Glibc)
import Glibc
#endif

/// The environ's variables, read from the host as the application asks:
/// nothing is copied or decoded until it asks for a key.
///
/// Two kinds of host: one that passes the pairs with the request (read in
/// place), and one that computes a variable when asked (mod_swgi, through
/// `environ_get`; the whole environ only through `environ_all`). Either
/// way the variables live in the host's request (Apache's request pool), so
/// they are read only while the request runs, under the connection's lock.
/// An application that keeps the environ past the request gets a copy,
/// made by ``keepAfterRequest()`` before the request ends.
final class RequestEnviron: EnvironSource, @unchecked Sendable {
    private let host: HostConnection
    private let pairs: UnsafePointer<swgi_pair>?
    private let count: Int
    /// Whether the host computes variables when asked.
    private let asksHost: Bool
    /// The copy made for after the request (under the host's lock).
    private var kept: EnvironBlock?

    init(host: HostConnection, pairs: UnsafePointer<swgi_pair>?, count: Int) {
        self.host = host
        self.pairs = pairs
        self.count = pairs == nil ? 0 : count
        asksHost = pairs == nil && host.hasEnvironCallbacks
        super.init()
    }

    /// Runs `body` while the request runs (lock held), else asks the kept copy.
    private func read<R>(_ body: () -> R, afterwards: (EnvironBlock) -> R) -> R? {
        host.withLock { running in
            if let kept { return afterwards(kept) }
            guard running else { return nil }
            return body()
        }
    }

    /// The bytes of `key`'s value (lock held, request running).
    private func withValue<R>(of key: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        if asksHost {
            guard let value = host.environValueLocked(key) else { return nil }
            return body(value.bytes)
        }
        let all = UnsafeBufferPointer(start: pairs, count: count)
        var key = key
        return key.withUTF8 { k -> R? in
            for pair in all where pair.name.len == k.count {
                if k.isEmpty || memcmp(pair.name.data, k.baseAddress!, k.count) == 0 {
                    return body(pair.value.bytes)
                }
            }
            return nil
        }
    }

    /// Every pair (lock held, request running).
    private func allPairs() -> UnsafeBufferPointer<swgi_pair> {
        asksHost ? host.environAllLocked() : UnsafeBufferPointer(start: pairs, count: count)
    }

    override func string(for key: String) -> String? {
        read({ withValue(of: key) { String(utf8Repairing: $0) } },
             afterwards: { $0.string(for: key) }) ?? nil
    }

    override func bytes(for key: String) -> [UInt8]? {
        read({ withValue(of: key) { Array($0) } }, afterwards: { $0.bytes(for: key) }) ?? nil
    }

    override func dictionary() -> [String: String] {
        read({ Self.copy(allPairs()).dictionary() }, afterwards: { $0.dictionary() }) ?? [:]
    }

    override func undecodableKeys() -> [String] {
        read({ Self.copy(allPairs()).undecodableKeys() }, afterwards: { $0.undecodableKeys() }) ?? []
    }

    /// Gives the environ a copy of its variables that outlives the request.
    /// Called in the request's last moments.
    func keepAfterRequest() {
        host.withLock { running in
            if running && kept == nil {
                kept = Self.copy(allPairs())
            }
        }
    }

    /// The pairs copied into a block of their own.
    private static func copy(_ pairs: UnsafeBufferPointer<swgi_pair>) -> EnvironBlock {
        var byteCount = 0
        for pair in pairs {
            byteCount += pair.name.bytes.count + pair.value.bytes.count
        }
        return EnvironBlock(capacity: pairs.count, byteCount: byteCount) { builder in
            for pair in pairs {
                builder.append(name: UnsafeRawBufferPointer(pair.name.bytes),
                               value: UnsafeRawBufferPointer(pair.value.bytes))
            }
        }
    }
}

extension swgi_bytes {
    /// The bytes.
    var bytes: UnsafeBufferPointer<UInt8> {
        guard let data else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: len)
    }
}
