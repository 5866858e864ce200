/// The SWGI version this library implements (`swgi.version`).
public let version = (major: 1, minor: 0)

/// The version of this SWGI library, reported by servers in their logs.
public let libraryVersion = "0.5.0"

/// An SWGI application: called with the request's ``Environ`` and a
/// ``StartResponse``, it starts the response and returns the ``Body``.
///
/// Servers call one application from many threads at once, hence `Sendable`.
///
/// ```swift
/// struct Hello: Application {
///     func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
///         try startResponse("200 OK", [("Content-Type", "text/plain")])
///         return ["Hello world!\n"]
///     }
/// }
/// ```
///
/// Middleware is an application that holds another and calls it.
public protocol Application: AsyncApplication {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body
}

/// An application made from a closure.
///
/// ```swift
/// let hello = App { environ, startResponse in
///     try startResponse("200 OK", [("Content-Type", "text/plain")])
///     return ["Hello world!\n"]
/// }
/// ```
public struct App: Application {
    private let function: @Sendable (Environ, StartResponse) throws -> Body

    public init(_ function: @escaping @Sendable (Environ, StartResponse) throws -> Body) {
        self.function = function
    }

    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try function(environ, startResponse)
    }
}
