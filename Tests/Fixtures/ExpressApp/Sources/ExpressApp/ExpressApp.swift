import SWGIBridge

struct Built: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return ["built from a package at \(environ.scriptName.isEmpty ? "/" : environ.scriptName)\n"]
    }
}

@c(swgi_entry_application) public func entry() -> UnsafeRawPointer { exportApplication(Built()) }

/// An async application from a package built without
/// `NonisolatedNonsendingByDefault` (as this one is): its async functions are
/// `@concurrent`, so the calls from SWGI, which is built with it, hop to them.
struct BuiltAsync: AsyncApplication {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        let word = await word(environ.queryString)
        try startResponse("200 OK", [("Content-Type", "text/plain")])
        return AsyncBody { write in
            for n in 1...3 {
                try await write("\(word) \(n)\n")
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    func word(_ query: String) async -> String {
        await Task.yield()
        return query.isEmpty ? "async" : query
    }
}

@c(swgi_entry_async) public func asyncEntry() -> UnsafeRawPointer { exportApplication(BuiltAsync()) }
