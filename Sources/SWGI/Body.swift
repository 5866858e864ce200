/// A response body: byte chunks produced lazily, and a `close()` that the
/// server calls exactly once, whatever happens (normal end, an error, a
/// client that went away).
///
/// A body is an array of chunks when it is ready at once:
///
/// ```swift
/// return ["Hello world!\n"]
/// ```
///
/// or a producer called for each next chunk (`nil` ends the body), which the
/// server drains one chunk at a time, sending each before asking for the next:
///
/// ```swift
/// var n = 0
/// return Body(next: {
///     n += 1
///     return n <= 3 ? "line \(n)\n" : nil
/// }, onClose: { print("done") })
/// ```
public struct Body: ExpressibleByArrayLiteral {
    @usableFromInline
    enum Storage {
        case chunks([Chunk])
        case producer(() throws -> Chunk?)
    }

    @usableFromInline
    let storage: Storage
    @usableFromInline
    let onClose: (() -> Void)?
    /// The file this body sends, when it is one (see ``FileRegion``).
    public let fileRegion: FileRegion?

    /// A body of chunks that are all ready.
    public init(_ chunks: [Chunk], onClose: (() -> Void)? = nil) {
        storage = .chunks(chunks)
        self.onClose = onClose
        fileRegion = nil
    }

    public init(arrayLiteral elements: Chunk...) {
        self.init(elements)
    }

    /// A body whose chunks come from `next`, called until it returns `nil` or
    /// throws. It is called on the request's thread.
    public init(next: @escaping () throws -> Chunk?, onClose: (() -> Void)? = nil) {
        storage = .producer(next)
        self.onClose = onClose
        fileRegion = nil
    }

    /// A body of a file region: a server that sends files itself sends
    /// `file`; everything else iterates `next`, which yields the same bytes.
    public init(file: FileRegion, next: @escaping () throws -> Chunk?, onClose: (() -> Void)? = nil) {
        storage = .producer(next)
        self.onClose = onClose
        fileRegion = file
    }

    /// A body of the same bytes as `body`, produced through `next` by
    /// middleware that watches the chunks without changing them (a
    /// validator, an error handler): a file body stays a file body, so the
    /// server may still send the file itself.
    public init(forwarding body: Body, next: @escaping () throws -> Chunk?, onClose: (() -> Void)? = nil) {
        storage = .producer(next)
        self.onClose = onClose
        fileRegion = body.fileRegion
    }

    /// A body that iterates `sequence` lazily.
    public init<S: Sequence>(_ sequence: S, onClose: (() -> Void)? = nil) where S.Element == Chunk {
        var iterator = sequence.makeIterator()
        self.init(next: { iterator.next() }, onClose: onClose)
    }

    /// No bytes at all.
    public static var empty: Body { Body([]) }

    /// The chunks, when the body is an array of ready chunks; `nil` for a
    /// producer. A server uses this to send `Content-Length`.
    public var readyChunks: [Chunk]? {
        if case .chunks(let c) = storage { return c }
        return nil
    }

    /// Releases what the body holds. The server calls it exactly once;
    /// middleware that replaces a body must call the inner body's `close()`
    /// from its own.
    public func close() {
        onClose?()
    }

    public func makeIterator() -> Iterator {
        Iterator(storage: storage)
    }

    /// A new body with each chunk transformed, lazily; closing it closes this one.
    public func map(_ transform: @escaping (Chunk) throws -> Chunk) -> Body {
        var inner = makeIterator()
        return Body(next: { try inner.next().map(transform) }, onClose: close)
    }

    /// Walks a body. `next()` throws when the application's producer throws.
    public struct Iterator {
        @usableFromInline
        let storage: Storage
        @usableFromInline
        var index = 0

        @usableFromInline
        init(storage: Storage) { self.storage = storage }

        @inlinable
        public mutating func next() throws -> Chunk? {
            switch storage {
            case .chunks(let chunks):
                guard index < chunks.count else { return nil }
                defer { index += 1 }
                return chunks[index]
            case .producer(let next):
                return try next()
            }
        }
    }
}
