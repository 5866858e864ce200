extension Environ {
    /// Reads and parses an `application/x-www-form-urlencoded` request body.
    /// A body of another type gives no parameters. A body over `limit` bytes
    /// throws an ``SWGIError`` with code `.tooLarge` (answer 413).
    ///
    /// ```swift
    /// let guess = try environ.form()["myparam"]
    /// ```
    public func form(limit: Int = 1 << 20) throws -> QueryParameters {
        let type = (self["CONTENT_TYPE"] ?? "").lowercased()
        guard type.hasPrefix("application/x-www-form-urlencoded") else {
            return QueryParameters(parsing: "")
        }
        if let length = Int(self["CONTENT_LENGTH"] ?? ""), length > limit {
            throw SWGIError(.tooLarge, "form body of \(length) bytes is over the limit of \(limit)")
        }
        let body = try input.read(limit + 1)
        if body.count > limit {
            throw SWGIError(.tooLarge, "form body is over the limit of \(limit) bytes")
        }
        return QueryParameters(parsing: String(decoding: body, as: UTF8.self))
    }

    /// A reader of a `multipart/form-data` body, streamed from ``input``.
    /// Throws `.badRequest` when the request is not multipart or has no boundary.
    public func multipart(limits: MultipartReader.Limits = .init()) throws -> MultipartReader {
        let type = self["CONTENT_TYPE"] ?? ""
        guard type.lowercased().hasPrefix("multipart/form-data"),
              let boundary = HeaderParameters(type).parameters["boundary"], !boundary.isEmpty, boundary.utf8.count <= 70 else {
            throw SWGIError(.badRequest, "not a multipart/form-data request with a boundary")
        }
        return MultipartReader(input: input, boundary: boundary, limits: limits)
    }

    /// The type asked for with `?type=NAME` (content negotiation by query,
    /// as the seed's blog does), when it is one of `offered`; else `fallback`.
    public func requestedType(offered: [String], default fallback: String) -> String {
        if let asked = query["type"], offered.contains(asked) { return asked }
        return fallback
    }
}

/// A header value with `; name=value` parameters, like `Content-Type` or
/// `Content-Disposition` (quoted values unquoted).
public struct HeaderParameters: Sendable {
    public let value: String
    public let parameters: [String: String]

    public init(_ header: String) {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for ch in header {
            if escaped { current.append(ch); escaped = false; continue }
            if quoted && ch == "\\" { escaped = true; current.append(ch); continue }
            if ch == "\"" { quoted.toggle() }
            if ch == ";" && !quoted { parts.append(current); current = ""; continue }
            current.append(ch)
        }
        parts.append(current)
        value = parts.first.map { Substring($0).trimmingSpaces() } ?? ""
        var params: [String: String] = [:]
        for part in parts.dropFirst() {
            guard let eq = part.firstIndex(of: "=") else { continue }
            let name = part[..<eq].trimmingSpaces().lowercased()
            var v = part[part.index(after: eq)...].trimmingSpaces()
            if v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\"") {
                v = String(v.dropFirst().dropLast())
                v = v.replacingOccurrences("\\\"", with: "\"").replacingOccurrences("\\\\", with: "\\")
            }
            if params[name] == nil { params[name] = v }
        }
        parameters = params
    }
}

extension String {
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Index>? {
        let t = Array(target.utf8)
        let u = self.utf8
        var i = u.startIndex
        while i != u.endIndex {
            var j = i
            var k = 0
            while k < t.count, j != u.endIndex, u[j] == t[k] { j = u.index(after: j); k += 1 }
            if k == t.count { return i..<j }
            i = u.index(after: i)
        }
        return nil
    }
}
