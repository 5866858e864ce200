// "Introduction to WSGI": middleware that streams the wrapped application's
// body, then appends its length, and closes the wrapped body.
import SWGIBridge

struct Greetings: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        var name = "Alex"
        if let given = environ.query["name"], !given.isEmpty { name = given }
        try startResponse("200 Ok", [("Content-type", "text/plain")])
        return ["My name is \(name)"]
    }
}

struct ResultLength<Wrapped: Application>: Application {
    let app: Wrapped

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let inner = try app(environ, startResponse)
        var chunks = inner.makeIterator()
        var size = 0
        var appended = false
        return Body(next: {
            if let chunk = try chunks.next() {
                size += chunk.count
                return chunk
            }
            if appended { return nil }
            appended = true
            return "\n\nResult length: \(size)"
        }, onClose: inner.close)
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(ResultLength(app: Greetings())) }
