// "WSGI Tutorial": several applications in one, chosen by PATH_INFO, and
// SimpleMiddleware, which appends to the response of the application it wraps.
import SWGIBridge

/// The tutorial's simple_app.
struct SimpleApp: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try startResponse("200 OK", [("Content-type", "text/plain; charset=utf-8")])
        return ["Hello World!"]
    }
}

/// Appends " -- Modified by middleware" to the wrapped application's body.
struct SimpleMiddleware<Wrapped: Application>: Application {
    let wrappedApp: Wrapped

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let response = try wrappedApp(environ, startResponse)
        var chunks = response.makeIterator()
        var appended = false
        return Body(next: {
            if let chunk = try chunks.next() { return chunk }
            if appended { return nil }
            appended = true
            return " -- Modified by middleware"
        }, onClose: response.close)
    }
}

/// `/app1` goes to app1; everything else to app2.
struct Dispatcher: Application {
    let app1 = SimpleApp()
    let app2 = SimpleMiddleware(wrappedApp: SimpleApp())

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        if environ.pathInfo == "/app1" {
            return try app1(environ, startResponse)
        }
        return try app2(environ, startResponse)
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(Dispatcher()) }
