/// One block of a response body: bytes, which may be given as a `String`
/// (sent as its UTF-8 bytes, without a copy).
///
/// ```swift
/// let a: Chunk = "Hello \(name)\n"
/// let b = Chunk([0x89, 0x50, 0x4E, 0x47])
/// ```
public struct Chunk: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    @usableFromInline
    enum Storage: Sendable {
        case bytes([UInt8])
        case string(String)
    }

    @usableFromInline
    let storage: Storage

    public init(_ bytes: [UInt8]) { storage = .bytes(bytes) }
    public init(_ string: String) { storage = .string(string) }
    public init(_ bytes: some Sequence<UInt8>) { storage = .bytes(Array(bytes)) }
    public init(stringLiteral value: String) { storage = .string(value) }

    /// The number of bytes.
    @inlinable
    public var count: Int {
        switch storage {
        case .bytes(let b): return b.count
        case .string(let s): return s.utf8.count
        }
    }

    @inlinable
    public var isEmpty: Bool { count == 0 }

    /// The bytes, copied into an array where the chunk holds a string.
    public var bytes: [UInt8] {
        switch storage {
        case .bytes(let b): return b
        case .string(let s): return Array(s.utf8)
        }
    }

    /// Calls `body` with the chunk's bytes, valid only during the call.
    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .bytes(let b):
            return try b.withUnsafeBytes(body)
        case .string(var s):
            return try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
        }
    }

    /// The bytes as text (invalid UTF-8 shown as U+FFFD), for logs and tests.
    public var description: String {
        switch storage {
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .string(let s): return s
        }
    }

    public static func == (lhs: Chunk, rhs: Chunk) -> Bool {
        lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in a.elementsEqual(b) } }
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
