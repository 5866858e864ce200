internal import Synchronization

/// Where the variables of an ``Environ`` come from: what a server received
/// for one request, looked up by name when the application asks. Servers
/// subclass it (``EnvironBlock`` is the one that owns its bytes);
/// applications see it only through ``Environ``.
///
/// A name may occur more than once: the first occurrence is the value.
/// Subclasses must be safe to call from any thread. (A class, not a
/// protocol, so that a host can ask whether the environ was kept: see
/// ``Environ/sharedSource()``.)
open class EnvironSource: @unchecked Sendable {
    /// How many environs read this source: the one a server made, and each
    /// copy made when a shared environ was changed (copy on write) while it
    /// lives. (Counted, not asked of the reference count: the source may be
    /// an object the server holds for other reasons too.)
    let readers = Atomic<Int>(0)

    public init() {}

    /// The value of `key` decoded as UTF-8 (U+FFFD for invalid bytes).
    open func string(for key: String) -> String? { nil }
    /// The exact bytes of the value of `key`.
    open func bytes(for key: String) -> [UInt8]? { nil }
    /// Every name with its decoded value.
    open func dictionary() -> [String: String] { [:] }
    /// The names whose value is not valid UTF-8.
    open func undecodableKeys() -> [String] { [] }
}

/// Variables kept as a server received them: one block of bytes, names and
/// values side by side, a value decoded into a `String` only when it is
/// looked up. Building it is one copy of the bytes, without hashing or
/// decoding: most applications read a handful of the forty-odd variables.
public final class EnvironBlock: EnvironSource, @unchecked Sendable {
    // Immutable after init: entries (4 × UInt32 each) followed by the bytes.
    private let memory: UnsafeMutableRawPointer
    private let entries: UnsafeMutablePointer<Entry>
    private let bytes: UnsafeMutablePointer<UInt8>
    /// The number of entries.
    public let count: Int

    @usableFromInline
    struct Entry {
        @usableFromInline var nameStart: UInt32
        @usableFromInline var nameCount: UInt32
        @usableFromInline var valueStart: UInt32
        @usableFromInline var valueCount: UInt32

        @usableFromInline
        init(nameStart: UInt32, nameCount: UInt32, valueStart: UInt32, valueCount: UInt32) {
            self.nameStart = nameStart
            self.nameCount = nameCount
            self.valueStart = valueStart
            self.valueCount = valueCount
        }
    }

    /// Writes the entries of a new block (see ``init(capacity:byteCount:_:)``).
    /// Writing more entries or bytes than declared traps.
    public struct Builder {
        @usableFromInline let entries: UnsafeMutablePointer<Entry>
        @usableFromInline let bytes: UnsafeMutablePointer<UInt8>
        @usableFromInline let capacity: Int
        @usableFromInline let byteCount: Int
        @usableFromInline var count = 0
        @usableFromInline var used = 0

        init(entries: UnsafeMutablePointer<Entry>, bytes: UnsafeMutablePointer<UInt8>, capacity: Int, byteCount: Int) {
            self.entries = entries
            self.bytes = bytes
            self.capacity = capacity
            self.byteCount = byteCount
        }

        /// Appends a name and its value.
        @inlinable
        public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            precondition(count < capacity && used + name.count + value.count <= byteCount,
                         "EnvironBlock: more than declared")
            let nameStart = used
            copy(name)
            let valueStart = used
            copy(value)
            (entries + count).initialize(to: Entry(nameStart: UInt32(nameStart), nameCount: UInt32(name.count),
                                                   valueStart: UInt32(valueStart), valueCount: UInt32(value.count)))
            count += 1
        }

        @inlinable
        mutating func copy(_ source: UnsafeRawBufferPointer) {
            if let base = source.baseAddress, source.count > 0 {
                UnsafeMutableRawPointer(bytes + used).copyMemory(from: base, byteCount: source.count)
                used += source.count
            }
        }
    }

    /// A block of at most `capacity` entries whose names and values add up
    /// to at most `byteCount` bytes, written by `fill`.
    public init(capacity: Int, byteCount: Int, _ fill: (inout Builder) -> Void) {
        precondition(capacity >= 0 && byteCount >= 0 && byteCount < Int(UInt32.max))
        let entryBytes = capacity * MemoryLayout<Entry>.stride
        memory = .allocate(byteCount: entryBytes + byteCount, alignment: MemoryLayout<Entry>.alignment)
        entries = memory.bindMemory(to: Entry.self, capacity: capacity)
        bytes = (memory + entryBytes).bindMemory(to: UInt8.self, capacity: byteCount)
        var builder = Builder(entries: entries, bytes: bytes, capacity: capacity, byteCount: byteCount)
        fill(&builder)
        count = builder.count
    }

    deinit {
        memory.deallocate()
    }

    private func name(_ e: Entry) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: bytes + Int(e.nameStart), count: Int(e.nameCount))
    }

    /// The raw value of entry `i`.
    private func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let e = entries[i]
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
    public override func string(for key: String) -> String? {
        index(of: key).map(string(at:))
    }

    /// The value of entry `i` decoded as UTF-8 (U+FFFD for invalid bytes).
    private func string(at i: Int) -> String {
        withValue(i) { String(utf8Repairing: $0.bindMemory(to: UInt8.self)) }
    }

    /// The exact bytes of the value of `key`.
    public override func bytes(for key: String) -> [UInt8]? {
        guard let i = index(of: key) else { return nil }
        return withValue(i) { Array($0) }
    }

    /// Every name with its decoded value (the first occurrence of a name).
    public override func dictionary() -> [String: String] {
        var all = [String: String](minimumCapacity: count)
        for i in 0..<count {
            let key = String(utf8Repairing: name(entries[i]))
            if all[key] == nil {
                all[key] = string(at: i)
            }
        }
        return all
    }

    /// The names whose value is not valid UTF-8.
    public override func undecodableKeys() -> [String] {
        var seen = Set<String>()
        var keys: [String] = []
        for i in 0..<count {
            let key = String(utf8Repairing: name(entries[i]))
            guard seen.insert(key).inserted else { continue }
            if !withValue(i, { EnvironBlock.decode($0).valid }) {
                keys.append(key)
            }
        }
        return keys
    }

    /// Bytes decoded as UTF-8, and whether they were valid (nothing replaced).
    public static func decode(_ raw: UnsafeRawBufferPointer) -> (string: String, valid: Bool) {
        let utf8 = raw.bindMemory(to: UInt8.self)
        var ascii = true
        for byte in utf8 where byte >= 0x80 {
            ascii = false
            break
        }
        let string = String(utf8Repairing: utf8)
        if ascii { return (string, true) }
        return (string, string.utf8.elementsEqual(utf8))
    }
}

package extension String {
    /// `bytes` decoded as UTF-8, U+FFFD for invalid bytes: what
    /// `String(decoding:as:)` gives, built by copying first and validating
    /// in place (about 40 instructions fewer for an environ value, most of
    /// which fit in a small string; callgrind, scripts/bench --instructions).
    @inlinable
    init(utf8Repairing bytes: UnsafeBufferPointer<UInt8>) {
        self.init(unsafeUninitializedCapacity: bytes.count) { $0.initialize(fromContentsOf: bytes) }
    }
}
