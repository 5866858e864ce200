extension Environ {
    /// Moves the first segment of `PATH_INFO` to the end of `SCRIPT_NAME` and
    /// returns it, exactly as wsgiref's `shift_path_info` does: `nil` when
    /// `PATH_INFO` is empty; empty and `.` segments inside the path are
    /// dropped; `SCRIPT_NAME` is normalized.
    ///
    /// ```swift
    /// // SCRIPT_NAME "/blog", PATH_INFO "/2024/post"
    /// let year = environ.shiftPathInfo()   // "2024"; now "/blog/2024", "/post"
    /// ```
    @discardableResult
    public mutating func shiftPathInfo() -> String? {
        let path = pathInfo
        if path.isEmpty { return nil }
        var parts = path.slashSeparated(omittingEmpty: false).map(String.init)
        if parts.count < 2 { parts.insert("", at: 0) }  // PATH_INFO without its leading "/"
        if parts.count > 2 {
            let middle = parts[1..<(parts.count - 1)].filter { !$0.isEmpty && $0 != "." }
            parts = [parts[0]] + middle + [parts[parts.count - 1]]
        }
        let name = parts.remove(at: 1)
        var script = Self.normalizePath(scriptName + "/" + name)
        if script.endsWithSlash { script = String(Substring(script.utf8.dropLast())) }
        if name.isEmpty && !script.endsWithSlash { script += "/" }
        self["SCRIPT_NAME"] = script
        self["PATH_INFO"] = parts.joined(separator: "/")
        return name == "." ? nil : name
    }

    /// POSIX path normalization (Python's `posixpath.normpath`).
    static func normalizePath(_ path: String) -> String {
        if path.isEmpty { return "." }
        let absolute = path.utf8.first == UInt8(ascii: "/")
        var out: [Substring] = []
        for part in path.slashSeparated(omittingEmpty: true) where part != "." {
            if part == ".." {
                if let last = out.last, last != ".." {
                    out.removeLast()
                } else if !absolute {
                    out.append(part)
                }
            } else {
                out.append(part)
            }
        }
        let joined = out.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// The URL of the application (scheme, host, `SCRIPT_NAME`), as wsgiref's
    /// `application_uri`, ending in `/`.
    public var applicationURI: String {
        var url = urlScheme + "://" + host
        url += URLEncoding.escapePath(scriptName.isEmpty ? "/" : scriptName)
        if !url.endsWithSlash { url += "/" }
        return url
    }

    /// The full URL of the request, reconstructed as wsgiref's `request_uri`
    /// does (PEP 3333's "URL Reconstruction").
    public func requestURI(includeQuery: Bool = true) -> String {
        var url = urlScheme + "://" + host
        url += URLEncoding.escapePath(scriptName)
        url += URLEncoding.escapePath(pathInfo.isEmpty && scriptName.isEmpty ? "/" : pathInfo)
        if includeQuery, !queryString.isEmpty {
            url += "?" + queryString
        }
        return url
    }

    /// `HTTP_HOST`, or `SERVER_NAME` with `SERVER_PORT` when it is not the
    /// scheme's default.
    public var host: String {
        if let host = self["HTTP_HOST"], !host.isEmpty { return host }
        let name = self["SERVER_NAME"] ?? "localhost"
        let port = self["SERVER_PORT"] ?? ""
        if port.isEmpty || (urlScheme == "https" && port == "443") || (urlScheme == "http" && port == "80") {
            return name
        }
        return name + ":" + port
    }
}

/// Percent-encoding for building URLs.
public enum URLEncoding {
    /// Escapes a path: everything but unreserved characters, `/` and the
    /// sub-delimiters a path may hold is percent-encoded (UTF-8).
    public static func escapePath(_ path: String) -> String {
        escape(path, keeping: "/-._~!$&'()*+,;=:@")
    }

    /// Escapes a query component (`+` for space is not used; space is `%20`).
    public static func escapeComponent(_ s: String) -> String {
        escape(s, keeping: "-._~")
    }

    static func escape(_ s: String, keeping safe: String) -> String {
        let safeBytes = Set(safe.utf8)
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in s.utf8 {
            let unreserved = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            if unreserved || safeBytes.contains(b) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

// Paths are split and compared by their bytes: a "/" is never part of
// another character's UTF-8, but Swift may count it into one `Character` with
// what precedes it (U+06DD, a "prepended concatenation mark", followed by "/"
// is one grapheme), so splitting or matching by `Character` could miss a
// separator. (Found by fuzzing `shiftPathInfo`.)
extension String {
    /// The parts between "/" bytes.
    package func slashSeparated(omittingEmpty: Bool) -> [Substring] {
        utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: omittingEmpty).map { Substring($0) }
    }

    /// Whether the UTF-8 bytes begin with those of `prefix` (no Unicode
    /// equivalence: a path is its bytes).
    package func hasBytePrefix(_ prefix: String) -> Bool {
        utf8.starts(with: prefix.utf8)
    }

    /// Whether the last byte is "/".
    package var endsWithSlash: Bool {
        utf8.last == UInt8(ascii: "/")
    }
}
