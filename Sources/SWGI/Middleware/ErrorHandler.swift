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
public struct ErrorHandler<Wrapped: AsyncApplication>: AsyncApplication {
    public let wrapped: Wrapped
    /// Whether the page shows the error (development only: it may reveal internals).
    public let showDetails: Bool

    public init(_ wrapped: Wrapped, showDetails: Bool = false) {
        self.wrapped = wrapped
        self.showDetails = showDetails
    }

    /// An async application (or a sync one served by an async server).
    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        let state = SentState()
        let body: AsyncBody
        do {
            body = try await wrapped(environ, state.tracking(startResponse))
        } catch {
            if state.sent { throw error }
            return AsyncBody(try errorPage(error, environ, startResponse))
        }
        if body.readyChunks != nil { return body }  // nothing left that can throw
        if case .sync(let inner) = body.storage {
            return AsyncBody(guarded(inner, state, environ, startResponse))
        }
        var chunks = body.makeAsyncIterator()
        var page: [Chunk]?
        return AsyncBody(next: {
            if let remaining = page {
                page = Array(remaining.dropFirst())
                return remaining.first
            }
            do {
                return state.passing(try await chunks.next())
            } catch {
                page = try state.page(for: error) { try errorPage(error, environ, startResponse) }
                return page?.isEmpty == false ? page!.removeFirst() : nil
            }
        }, onClose: body.close)
    }

    /// A sync body whose failures before the first byte become the error page.
    private func guarded(_ body: Body, _ state: SentState, _ environ: Environ, _ startResponse: StartResponse) -> Body {
        var chunks = body.makeIterator()
        var page: [Chunk]?
        let next: () throws -> Chunk? = {
            if let remaining = page {
                page = Array(remaining.dropFirst())
                return remaining.first
            }
            do {
                return state.passing(try chunks.next())
            } catch {
                page = try state.page(for: error) { try errorPage(error, environ, startResponse) }
                return page?.isEmpty == false ? page!.removeFirst() : nil
            }
        }
        return Body(forwarding: body, next: next, onClose: body.close)
    }

    fileprivate func errorPage(_ error: any Error, _ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        environ.errors.writeLine("ErrorHandler: \(String(reflecting: error))")
        try startResponse(HTTPStatus.line(500), [("Content-Type", "text/plain; charset=utf-8")], excInfo: error)
        let text = showDetails ? "Internal Server Error: \(error)" : "Internal Server Error"
        return [Chunk(text)]
    }
}

extension ErrorHandler: Application where Wrapped: Application {
    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let state = SentState()
        let body: Body
        do {
            body = try wrapped(environ, state.tracking(startResponse))
        } catch {
            if state.sent { throw error }
            return try errorPage(error, environ, startResponse)
        }
        if body.readyChunks != nil { return body }  // nothing left that can throw
        return guarded(body, state, environ, startResponse)
    }
}

/// Whether a byte of the response has been sent (after that, an error
/// cannot become a page).
final class SentState: @unchecked Sendable {
    var sent = false

    /// `startResponse`, noting when a write sends a byte.
    func tracking(_ startResponse: StartResponse) -> StartResponse {
        StartResponse { status, headers, excInfo in
            let write = try startResponse(status, headers, excInfo: excInfo)
            return Writer { chunk in
                if !chunk.isEmpty { self.sent = true }
                try write(chunk)
            }
        }
    }

    /// A chunk on its way out.
    func passing(_ chunk: Chunk?) -> Chunk? {
        if let chunk, !chunk.isEmpty { sent = true }
        return chunk
    }

    /// The error page's chunks for an error from the body, or the error
    /// again when bytes were already sent.
    func page(for error: any Error, _ make: () throws -> Body) throws -> [Chunk] {
        if sent { throw error }
        return try make().readyChunks ?? []
    }
}
