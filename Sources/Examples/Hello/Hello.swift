// PEP 3333's hello world, in SWGI.
import SWGIBridge

struct Hello: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return ["Hello world!\n"]
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(Hello()) }
