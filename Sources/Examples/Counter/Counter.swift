// "Getting Started with WSGI": the session middleware example. The session
// key comes from SetEnv SWGI_SESSION_KEY (at least 32 bytes).
import SWGIBridge
import SWGISessions

struct Counter: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        guard let session = environ.session else {
            throw SWGIError(.badRequest, "Counter runs inside Sessions")
        }
        let count = Int(session["count"] ?? "") ?? 1
        session["count"] = String(count + 1)
        try startResponse("200 OK", [("Content-type", "text/plain")])
        return ["You have been here \(count) times!\n"]
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer {
    exportApplication(Sessions(Counter(), key: .environ("SWGI_SESSION_KEY")))
}
