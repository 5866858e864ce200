/// Dispatches by URL prefix, moving the matched prefix from `PATH_INFO` to
/// `SCRIPT_NAME` (`shift_path_info` semantics), so the mounted application
/// sees itself at its own root and can build its URLs from `SCRIPT_NAME`.
/// The longest matching prefix wins; prefixes match whole path segments.
///
/// ```swift
/// let site = URLMap([
///     "/app1": App1(),
///     "/api": URLMap(["/v1": V1(), "/v2": V2()]),   // nested: /api/v1/...
///     "/": Home(),
/// ])
/// ```
///
/// Without a match (and no `/` route) it answers 404.
public struct URLMap: Application {
    private let routes: [(prefix: String, app: any Application)]

    public init(_ routes: [String: any Application]) {
        self.routes = routes.map { key, app in
            var prefix = key
            while prefix.endsWithSlash { prefix = String(Substring(prefix.utf8.dropLast())) }
            if !prefix.isEmpty && prefix.utf8.first != UInt8(ascii: "/") { prefix = "/" + prefix }
            return (prefix, app)
        }.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
    }

    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let path = environ.pathInfo
        for (prefix, app) in routes {
            guard prefix.isEmpty || path.utf8.elementsEqual(prefix.utf8) || path.hasBytePrefix(prefix + "/") else {
                continue
            }
            var inner = environ
            inner["SCRIPT_NAME"] = environ.scriptName + prefix
            inner["PATH_INFO"] = String(Substring(path.utf8.dropFirst(prefix.utf8.count)))
            return try app(inner, startResponse)
        }
        try startResponse(HTTPStatus.line(404), [("Content-Type", "text/plain; charset=utf-8")])
        return ["Not Found\n"]
    }
}

/// Dispatches by `REQUEST_METHOD`; any other method gets 405 with an `Allow`
/// header. `HEAD` goes to the `GET` application when it has none of its own.
///
/// ```swift
/// let app = MethodDispatcher(["GET": ShowForm(), "POST": TakeGuess()])
/// ```
public struct MethodDispatcher: Application {
    private let handlers: [String: any Application]

    public init(_ handlers: [String: any Application]) {
        self.handlers = handlers
    }

    /// The methods answered, as the `Allow` header lists them.
    public var allowed: [String] {
        var methods = Set(handlers.keys)
        if methods.contains("GET") { methods.insert("HEAD") }
        return methods.sorted()
    }

    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let method = environ.requestMethod
        if let app = handlers[method] ?? (method == "HEAD" ? handlers["GET"] : nil) {
            return try app(environ, startResponse)
        }
        try startResponse(HTTPStatus.line(405), [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Allow", allowed.joined(separator: ", ")),
        ])
        return ["Method Not Allowed\n"]
    }
}
