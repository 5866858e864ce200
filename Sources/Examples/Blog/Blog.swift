// "Getting Started with WSGI": the REST blog. GET / lists the entries, GET
// /NAME shows one, PUT /NAME creates (201) or updates (200) it from the
// request body, DELETE /NAME removes it (204); ?type=xhtml|xml|atom picks the
// rendering. Entries are files in the directory SetEnv BLOG_DIR names.
import SWGIBridge

struct Blog: Application {
    static let maxEntry = 1 << 20

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        guard let directory = environ["BLOG_DIR"], directory.hasPrefix("/") else {
            throw StorageError(description: "BLOG_DIR is not set to an absolute path (SetEnv BLOG_DIR /srv/blog)")
        }
        let storage = Storage(directory: directory)
        let format = Format(rawValue: environ.requestedType(offered: ["xhtml", "xml", "atom"], default: "xhtml")) ?? .xhtml
        let templates = Templates(base: environ.applicationURI)
        let name = String(environ.pathInfo.dropFirst())

        switch environ.requestMethod {
        case "GET", "HEAD":
            if name.isEmpty {
                return try respond("200 OK", format, templates.list(try storage.all(), format), startResponse)
            }
            return try show(name, storage, templates, format, status: "200 OK", startResponse)
        case "PUT":
            guard !name.isEmpty else { return try text("400 Bad Request", "Missing path name", startResponse) }
            guard Storage.isValid(name) else {
                return try text("400 Bad Request", "Invalid entry name: letters, digits, - _ + . only", startResponse)
            }
            guard let length = Int(environ["CONTENT_LENGTH"] ?? ""), length > 0 else {
                return try text("411 Length Required", "Missing content", startResponse)
            }
            guard length <= Self.maxEntry else {
                return try text("413 Content Too Large", "An entry is at most \(Self.maxEntry) bytes", startResponse)
            }
            let existed = try storage.load(name) != nil
            try storage.save(name, try environ.input.read(length))
            return try show(name, storage, templates, format, status: existed ? "200 OK" : "201 Created", startResponse)
        case "DELETE":
            if Storage.isValid(name), storage.delete(name) {
                try startResponse("204 Deleted", [])
                return []
            }
            return try text("404 Not Found", "\(name) not found", startResponse)
        default:
            try startResponse("405 Method Not Allowed", [("Content-type", "text/plain"), ("Allow", "DELETE, GET, HEAD, PUT")])
            return ["Method Not Allowed"]
        }
    }

    func show(_ name: String, _ storage: Storage, _ templates: Templates, _ format: Format,
              status: String, _ startResponse: StartResponse) throws -> Body {
        guard Storage.isValid(name), let entry = try storage.load(name) else {
            return try text("404 Not Found", "\(name) not found", startResponse)
        }
        return try respond(status, format, templates.single(entry, format), startResponse)
    }

    func respond(_ status: String, _ format: Format, _ body: String, _ startResponse: StartResponse) throws -> Body {
        try startResponse(status, [("Content-type", format.contentType)])
        return [Chunk(body)]
    }

    func text(_ status: String, _ message: String, _ startResponse: StartResponse) throws -> Body {
        try startResponse(status, [("Content-type", "text/plain; charset=utf-8")])
        return [Chunk(message)]
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(Blog()) }
