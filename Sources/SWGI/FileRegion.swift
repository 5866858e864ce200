/// Part of a file, as a response body: what `swgi.file_wrapper` makes. A
/// server that can send files itself (mod_swgi: an APR file bucket, which
/// Apache sends with sendfile) sends the region without the bytes passing
/// through the application; any other server, and any middleware that
/// iterates the body, gets its blocks from the body's producer.
public struct FileRegion: Sendable, Equatable {
    public let path: String
    public let offset: Int
    public let length: Int

    public init(path: String, offset: Int, length: Int) {
        self.path = path
        self.offset = offset
        self.length = length
    }
}

/// `swgi.file_wrapper`: makes a body of a file (or part of it) that the
/// server may send efficiently. `nil` in an environ whose server offers none.
///
/// ```swift
/// if let wrap = environ.fileWrapper {
///     return try wrap(path: "/srv/files/report.pdf")
/// }
/// ```
public struct FileWrapper: Sendable {
    public typealias Function = @Sendable (_ path: String, _ offset: Int, _ length: Int?) throws -> Body

    private let function: Function

    public init(_ function: @escaping Function) {
        self.function = function
    }

    /// A body of `length` bytes of the file from `offset` (to the end when
    /// `length` is nil). Throws when the file cannot be opened.
    public func callAsFunction(path: String, offset: Int = 0, length: Int? = nil) throws -> Body {
        try function(path, offset, length)
    }
}
