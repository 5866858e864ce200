import SWGIBridge

struct Built: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return ["built from a package at \(environ.scriptName.isEmpty ? "/" : environ.scriptName)\n"]
    }
}

@c(swgi_entry_application) public func entry() -> UnsafeRawPointer { exportApplication(Built()) }
