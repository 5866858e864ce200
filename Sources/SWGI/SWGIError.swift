/// An error raised by the SWGI machinery itself: a broken contract between
/// server and application, or a request that cannot be served.
///
/// Errors are a struct with a nested ``Code`` so that new kinds can be added
/// without breaking code that switches over them.
public struct SWGIError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        /// The status passed to `startResponse` is not `NNN Reason`.
        public static let invalidStatus = Code(name: "invalidStatus")
        /// A header name or value breaks the rules (see ``ResponseHead``).
        public static let invalidHeader = Code(name: "invalidHeader")
        /// `startResponse` was called a second time without `excInfo`.
        public static let startResponseTwice = Code(name: "startResponseTwice")
        /// Body bytes were produced before `startResponse` was called.
        public static let responseNotStarted = Code(name: "responseNotStarted")
        /// The client went away; no more output can be delivered.
        public static let clientDisconnected = Code(name: "clientDisconnected")
        /// The request body could not be read (client gone, timeout, over the limit).
        public static let inputFailed = Code(name: "inputFailed")
        /// The request is malformed (a form or multipart body that does not parse).
        public static let badRequest = Code(name: "badRequest")
        /// The request is larger than a limit the application set.
        public static let tooLarge = Code(name: "tooLarge")
        /// The body was shorter than the `Content-Length` the application declared.
        public static let contentLengthMismatch = Code(name: "contentLengthMismatch")
        /// A blocking read of `swgi.input` where the server cannot wait: an
        /// async application served on an event loop (swgi-serve) reads
        /// with `await` (`try await environ.input.read()`).
        public static let wouldBlock = Code(name: "wouldBlock")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
