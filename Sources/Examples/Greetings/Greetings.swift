// The first example of "Introduction to WSGI": greets the name given in the
// query string (?name=John), or Alex.
import SWGIBridge

struct Greetings: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        var name = "Alex"
        if let given = environ.query["name"], !given.isEmpty {
            name = given
        }
        try startResponse("200 Ok", [("Content-type", "text/plain")])
        return ["My name is \(name)"]
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(Greetings()) }
