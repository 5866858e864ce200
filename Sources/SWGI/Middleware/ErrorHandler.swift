/// Catches what the wrapped application throws (when called, or while its
/// body is produced, up to the first byte sent), logs it to `swgi.errors`,
/// and answers `500 Internal Server Error` with a short page. Once bytes are
/// sent nothing can be taken back: the error goes on to the server, which
/// cuts the connection.
///
/// ```swift
/// let app = ErrorHandler(MyApp())                     // "Internal Server Error"
/// let dev = ErrorHandler(MyApp(), showDetails: true)  // "Internal Server Error: <error>"
/// ```
public struct ErrorHandler<Wrapped: Application>: Application {
    public let wrapped: Wrapped
    /// Whether the page shows the error (development only: it may reveal internals).
    public let showDetails: Bool

    public init(_ wrapped: Wrapped, showDetails: Bool = false) {
        self.wrapped = wrapped
        self.showDetails = showDetails
    }

    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let state = SentState()
        let tracking = StartResponse { status, headers, excInfo in
            let write = try startResponse(status, headers, excInfo: excInfo)
            return Writer { chunk in
                if !chunk.isEmpty { state.sent = true }
                try write(chunk)
            }
        }
        let body: Body
        do {
            body = try wrapped(environ, tracking)
        } catch {
            if state.sent { throw error }
            return try errorPage(error, environ, startResponse)
        }
        if body.readyChunks != nil { return body }  // nothing left that can throw
        var chunks = body.makeIterator()
        var page: [Chunk]?
        let next: () throws -> Chunk? = {
            if let remaining = page {
                page = Array(remaining.dropFirst())
                return remaining.first
            }
            do {
                let chunk = try chunks.next()
                if let chunk, !chunk.isEmpty { state.sent = true }
                return chunk
            } catch {
                if state.sent { throw error }
                let chunks = try errorPage(error, environ, startResponse).readyChunks ?? []
                page = Array(chunks.dropFirst())
                return chunks.first
            }
        }
        return Body(forwarding: body, next: next, onClose: body.close)
    }

    private func errorPage(_ error: any Error, _ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        environ.errors.writeLine("ErrorHandler: \(String(reflecting: error))")
        try startResponse(HTTPStatus.line(500), [("Content-Type", "text/plain; charset=utf-8")], excInfo: error)
        let text = showDetails ? "Internal Server Error: \(error)" : "Internal Server Error"
        return [Chunk(text)]
    }
}

final class SentState: @unchecked Sendable {
    var sent = false
}
