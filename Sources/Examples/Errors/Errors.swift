// "WSGI Tutorial": error handling. The application fails on /fail (and on a
// ?divisor=0); ErrorHandler turns the error into a 500 page that names it,
// as the tutorial's try/except does, and logs it to the error log.
import SWGIBridge

struct Failure: Error, CustomStringConvertible {
    let description: String
}

struct MyApp: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        if environ.pathInfo == "/fail" {
            throw Failure(description: "something went wrong")
        }
        let divisor = Int(environ.query["divisor"] ?? "1") ?? 1
        guard divisor != 0 else { throw Failure(description: "division by zero") }
        try startResponse("200 OK", [("Content-type", "text/plain; charset=utf-8")])
        return ["100 / \(divisor) = \(100 / divisor)\n"]
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(ErrorHandler(MyApp(), showDetails: true)) }
