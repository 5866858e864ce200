public import SWGI

/// Serves the files under a folder: `PATH_INFO` names the file. Sends them
/// through `swgi.file_wrapper` (with mod_swgi, an APR file bucket: sendfile),
/// with `Last-Modified`, `If-Modified-Since` (304) and a single `Range`
/// (206, or 416). Nothing outside the folder is ever served: `..` and hidden
/// (dot) segments are refused, and a path whose symlinks lead outside the
/// folder is 404.
///
/// ```swift
/// let site = URLMap(["/static": StaticFiles(root: "/srv/site/static"), "/": App()])
/// ```
public struct StaticFiles: Application {
    /// The folder, with its symlinks resolved.
    public let root: String
    public let types: [String: String]

    public init(root: String, types: [String: String] = StaticFiles.defaultTypes) {
        self.root = resolvedPath(root) ?? root
        self.types = types
    }

    public func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let method = environ.requestMethod
        guard method == "GET" || method == "HEAD" else {
            try startResponse(HTTPStatus.line(405), [("Content-Type", "text/plain"), ("Allow", "GET, HEAD")])
            return ["Method Not Allowed\n"]
        }
        guard let path = file(for: environ.pathInfo), let info = FileInfo(path: path), info.isRegular else {
            try startResponse(HTTPStatus.line(404), [("Content-Type", "text/plain")])
            return ["Not Found\n"]
        }
        let lastModified = HTTPDate.format(info.modified)
        var headers = [("Content-Type", contentType(path)), ("Last-Modified", lastModified),
                       ("Accept-Ranges", "bytes")]
        if let since = environ["HTTP_IF_MODIFIED_SINCE"].flatMap(HTTPDate.parse), info.modified <= since {
            try startResponse(HTTPStatus.line(304), headers.filter { $0.0 != "Content-Type" })
            return []
        }
        var offset = 0
        var length = info.size
        var status = 200
        if let range = environ["HTTP_RANGE"] {
            switch Self.parseRange(range, size: info.size) {
            case .whole:
                break
            case .unsatisfiable:
                try startResponse(HTTPStatus.line(416), [("Content-Type", "text/plain"),
                                                         ("Content-Range", "bytes */\(info.size)")])
                return ["Range Not Satisfiable\n"]
            case .part(let first, let last):
                offset = first
                length = last - first + 1
                status = 206
                headers.append(("Content-Range", "bytes \(first)-\(last)/\(info.size)"))
            }
        }
        let wrap = environ.fileWrapper ?? posixFileWrapper
        let body = try wrap(path: path, offset: offset, length: length)
        try startResponse(HTTPStatus.line(status), headers + [("Content-Length", String(length))])
        return body
    }

    /// The file a `PATH_INFO` names, inside the root, or nil.
    func file(for pathInfo: String) -> String? {
        // By bytes: see String.slashSeparated in SWGI.
        let segments = pathInfo.slashSeparated(omittingEmpty: true)
        guard !segments.isEmpty else { return nil }
        for segment in segments where segment.utf8.first == UInt8(ascii: ".") || segment.utf8.contains(0)
            || segment.utf8.contains(UInt8(ascii: "\\")) {
            return nil
        }
        let candidate = root + "/" + segments.joined(separator: "/")
        guard let resolved = resolvedPath(candidate), resolved.hasBytePrefix(root + "/") else { return nil }
        return resolved
    }

    func contentType(_ path: String) -> String {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return "application/octet-stream" }
        return types[path[path.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }

    enum RangeRequest: Equatable {
        case whole, unsatisfiable, part(Int, Int)
    }

    /// One `bytes=` range; several ranges or a malformed header get the whole file.
    static func parseRange(_ header: String, size: Int) -> RangeRequest {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst(6).trimmingCharacters()
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let a = spec[..<dash], b = spec[spec.index(after: dash)...]
        if a.isEmpty {
            guard let n = Int(b) else { return .whole }
            if n <= 0 || size == 0 { return .unsatisfiable }
            return .part(max(0, size - n), size - 1)
        }
        guard let first = Int(a), first >= 0 else { return .whole }
        if first >= size { return .unsatisfiable }
        if b.isEmpty { return .part(first, size - 1) }
        guard let last = Int(b), last >= first else { return .whole }
        return .part(first, min(last, size - 1))
    }

    public static let defaultTypes: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "txt": "text/plain; charset=utf-8",
        "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "json": "application/json",
        "xml": "application/xml", "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg",
        "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "ico": "image/x-icon",
        "pdf": "application/pdf", "wasm": "application/wasm", "woff2": "font/woff2", "woff": "font/woff",
        "mp4": "video/mp4", "zip": "application/zip", "gz": "application/gzip",
    ]
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
