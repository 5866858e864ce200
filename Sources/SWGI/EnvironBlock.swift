/// The variables a server received for one request, kept as it received
/// them: one block of bytes, names and values side by side, a value decoded
/// into a `String` only when it is looked up.
///
/// Servers make one per request (SWGIBridge from the pairs mod_swgi passes);
/// applications see it through ``Environ``. Building it is one copy of the
/// bytes, without hashing or decoding: most applications read a handful of
/// the forty-odd variables.
///
/// A name may occur more than once: the first occurrence is the value.
/// A value may be *deferred*: the server computes it only when asked (mod_swgi
/// defers `PATH_TRANSLATED`, which costs Apache a sub-request), through the
/// `deferred` closure, which must be thread-safe.
public final class EnvironBlock: @unchecked Sendable {
    // Immutable after init: entries (4 × UInt32 each) followed by the bytes.
    private let memory: UnsafeMutableRawPointer
    private let entries: UnsafeMutablePointer<Entry>
    private let bytes: UnsafeMutablePointer<UInt8>
    /// The number of entries.
    public let count: Int
    private let deferred: (@Sendable (String) -> [UInt8]?)?

    struct Entry {
        var nameStart: UInt32
        var nameCount: UInt32
        var valueStart: UInt32
        var valueCount: UInt32   // deferredMark: ask `deferred`

        static let deferredMark = UInt32.max
    }

    /// Writes the entries of a new block (see ``init(capacity:byteCount:deferred:_:)``).
    public struct Builder {
        fileprivate let entries: UnsafeMutablePointer<Entry>
        fileprivate let bytes: UnsafeMutablePointer<UInt8>
        fileprivate let capacity: Int
        fileprivate let byteCount: Int
        fileprivate var count = 0
        fileprivate var used = 0

        /// Appends a name and its value.
        public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            let nameStart = copy(name)
            let valueStart = copy(value)
            add(Entry(nameStart: nameStart, nameCount: UInt32(name.count),
                      valueStart: valueStart, valueCount: UInt32(value.count)))
        }

        /// Appends a name whose value the block's `deferred` closure computes.
        public mutating func appendDeferred(name: UnsafeRawBufferPointer) {
            let nameStart = copy(name)
            add(Entry(nameStart: nameStart, nameCount: UInt32(name.count),
                      valueStart: 0, valueCount: Entry.deferredMark))
        }

        private mutating func copy(_ source: UnsafeRawBufferPointer) -> UInt32 {
            precondition(used + source.count <= byteCount, "EnvironBlock: more bytes than declared")
            let start = used
            if let base = source.baseAddress, source.count > 0 {
                UnsafeMutableRawPointer(bytes + start).copyMemory(from: base, byteCount: source.count)
            }
            used += source.count
            return UInt32(start)
        }

        private mutating func add(_ entry: Entry) {
            precondition(count < capacity, "EnvironBlock: more entries than declared")
            (entries + count).initialize(to: entry)
            count += 1
        }
    }

    /// A block of at most `capacity` entries whose names and (not deferred)
    /// values add up to at most `byteCount` bytes, written by `fill`.
    public init(capacity: Int, byteCount: Int,
                deferred: (@Sendable (String) -> [UInt8]?)? = nil,
                _ fill: (inout Builder) -> Void) {
        precondition(capacity >= 0 && byteCount >= 0 && byteCount < Int(UInt32.max))
        let entryBytes = capacity * MemoryLayout<Entry>.stride
        memory = .allocate(byteCount: entryBytes + byteCount, alignment: MemoryLayout<Entry>.alignment)
        entries = memory.bindMemory(to: Entry.self, capacity: capacity)
        bytes = (memory + entryBytes).bindMemory(to: UInt8.self, capacity: byteCount)
        var builder = Builder(entries: entries, bytes: bytes, capacity: capacity, byteCount: byteCount)
        fill(&builder)
        count = builder.count
        self.deferred = deferred
    }

    deinit {
        memory.deallocate()
    }

    private func name(_ e: Entry) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: bytes + Int(e.nameStart), count: Int(e.nameCount))
    }

    /// The raw value of entry `i`: the bytes, or a deferred value computed now.
    private func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        let e = entries[i]
        if e.valueCount == Entry.deferredMark {
            guard let deferred, let value = deferred(String(decoding: name(e), as: UTF8.self)) else { return nil }
            return value.withUnsafeBytes(body)
        }
        return body(UnsafeRawBufferPointer(start: bytes + Int(e.valueStart), count: Int(e.valueCount)))
    }

    /// The index of the first entry named `key`.
    private func index(of key: String) -> Int? {
        var key = key
        return key.withUTF8 { k -> Int? in
            guard let first = k.first else {
                for i in 0..<count where entries[i].nameCount == 0 { return i }
                return nil
            }
            let length = UInt32(truncatingIfNeeded: k.count)
            for i in 0..<count {
                let e = entries[i]
                guard e.nameCount == length, bytes[Int(e.nameStart)] == first else { continue }
                var j = 1
                let start = bytes + Int(e.nameStart)
                while j < k.count && start[j] == k[j] { j += 1 }
                if j == k.count { return i }
            }
            return nil
        }
    }

    /// The value of `key` decoded as UTF-8 (U+FFFD for invalid bytes).
    public func string(for key: String) -> String? {
        guard let i = index(of: key) else { return nil }
        return withValue(i) { String(decoding: $0.bindMemory(to: UInt8.self), as: UTF8.self) }
    }

    /// The exact bytes of the value of `key`.
    public func bytes(for key: String) -> [UInt8]? {
        guard let i = index(of: key) else { return nil }
        return withValue(i) { Array($0) }
    }

    /// Every name with its decoded value (the first occurrence of a name).
    public func dictionary() -> [String: String] {
        var all = [String: String](minimumCapacity: count)
        for i in 0..<count {
            let key = String(decoding: name(entries[i]), as: UTF8.self)
            if all[key] == nil, let value = withValue(i, { String(decoding: $0.bindMemory(to: UInt8.self), as: UTF8.self) }) {
                all[key] = value
            }
        }
        return all
    }

    /// The names whose value is not valid UTF-8.
    public func undecodableKeys() -> [String] {
        var seen = Set<String>()
        var keys: [String] = []
        for i in 0..<count {
            let key = String(decoding: name(entries[i]), as: UTF8.self)
            guard seen.insert(key).inserted else { continue }
            if withValue(i, { EnvironBlock.decode($0).valid }) == false {
                keys.append(key)
            }
        }
        return keys
    }

    /// Computes every deferred value now, so that the `deferred` closure is
    /// not needed afterwards (a host calls this before the request's state
    /// goes away, when the environ outlives the request; the closure caches).
    public func resolveDeferred() {
        for i in 0..<count where entries[i].valueCount == Entry.deferredMark {
            _ = withValue(i) { _ in () }
        }
    }

    /// Bytes decoded as UTF-8, and whether they were valid (nothing replaced).
    public static func decode(_ raw: UnsafeRawBufferPointer) -> (string: String, valid: Bool) {
        let utf8 = raw.bindMemory(to: UInt8.self)
        var ascii = true
        for byte in utf8 where byte >= 0x80 {
            ascii = false
            break
        }
        let string = String(decoding: utf8, as: UTF8.self)
        if ascii { return (string, true) }
        return (string, string.utf8.elementsEqual(utf8))
    }
}
