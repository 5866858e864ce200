import CSWGIABI
import NIOCore
import NIOHTTP1

/// What swgi-serve was told to do.
struct ServeConfig: Sendable {
    var host = "127.0.0.1"
    var port = 8000
    var mount = ""
    var entry = "application"
    var threads = 16
    var passAuthorization = false
    var setenv: [(String, String)] = []
    var path = ""
}

enum RequestRejection: Error {
    case status(Int, String)
}

/// The CGI variables for a request, computed as Apache (and so mod_swgi)
/// computes them: PATH_INFO percent-decoded with dot segments resolved and
/// slashes merged; encoded slashes refused (404, Apache's default);
/// HTTP_* for headers whose names are letters, digits and '-' (others
/// dropped); Authorization only when passed; Proxy never (httpoxy);
/// SERVER_NAME and SERVER_PORT from the Host header.
func cgiVariables(_ head: HTTPRequestHead, local: SocketAddress?, remote: SocketAddress?,
                  config: ServeConfig) throws -> [(String, [UInt8])] {
    let uri = head.uri
    let rawPath: Substring
    let query: Substring
    if let q = uri.firstIndex(of: "?") {
        rawPath = uri[..<q]
        query = uri[uri.index(after: q)...]
    } else {
        rawPath = uri[...]
        query = ""
    }
    guard rawPath.hasPrefix("/") else { throw RequestRejection.status(400, "Bad Request") }
    let path = try normalize(decode(rawPath))

    // The path stays bytes: PATH_INFO may hold bytes that are not UTF-8.
    let mount = Array(config.mount.utf8)
    var pathInfo = path
    if !mount.isEmpty {
        guard path.starts(with: mount), path.count == mount.count || path[mount.count] == UInt8(ascii: "/") else {
            throw RequestRejection.status(404, "Not Found")
        }
        pathInfo = Array(path[mount.count...])
    }

    var vars: [(String, String)] = config.setenv
    var headers: [String: String] = [:]
    var order: [String] = []
    for (name, value) in head.headers {
        guard !name.isEmpty, name.utf8.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "-") }) else { continue }
        let lower = name.lowercased()
        if lower == "proxy" { continue }
        if lower == "authorization" && !config.passAuthorization { continue }
        if lower == "proxy-authorization" { continue }
        let key: String
        switch lower {
        case "content-type": key = "CONTENT_TYPE"
        case "content-length": key = "CONTENT_LENGTH"
        default: key = "HTTP_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
        }
        if let old = headers[key] {
            headers[key] = old + ", " + value
        } else {
            headers[key] = value
            order.append(key)
        }
    }
    for key in order { vars.append((key, headers[key] ?? "")) }

    var serverName = config.host
    var serverPort = String(config.port)
    if let host = head.headers.first(name: "Host") {
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") {
            serverName = String(host[..<colon])
            serverPort = String(host[host.index(after: colon)...])
        } else {
            serverName = host
            serverPort = "80"
        }
    }
    vars += [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "swgi-serve/0.5.0"),
        ("SERVER_PROTOCOL", "HTTP/\(head.version.major).\(head.version.minor)"),
        ("SERVER_NAME", serverName),
        ("SERVER_PORT", serverPort),
        ("SERVER_ADDR", local?.ipAddress ?? config.host),
        ("REMOTE_ADDR", remote?.ipAddress ?? ""),
        ("REMOTE_PORT", remote?.port.map(String.init) ?? ""),
        ("REQUEST_SCHEME", "http"),
        ("REQUEST_METHOD", head.method.rawValue),
        ("REQUEST_URI", uri),
        ("QUERY_STRING", String(query)),
        ("SCRIPT_NAME", config.mount),
        ("SCRIPT_FILENAME", config.path),
    ]
    return vars.map { ($0.0, Array($0.1.utf8)) } + [("PATH_INFO", pathInfo)]
}

private func isAlnum(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
}

/// %XX decoding; an encoded slash or NUL is refused as Apache refuses it.
private func decode(_ path: Substring) throws -> [UInt8] {
    var out: [UInt8] = []
    var bytes = Array(path.utf8)[...]
    while let c = bytes.popFirst() {
        guard c == UInt8(ascii: "%") else { out.append(c); continue }
        guard bytes.count >= 2, let hi = hex(bytes[bytes.startIndex]), let lo = hex(bytes[bytes.startIndex + 1]) else {
            throw RequestRejection.status(400, "Bad Request")
        }
        bytes = bytes.dropFirst(2)
        let b = hi << 4 | lo
        if b == UInt8(ascii: "/") { throw RequestRejection.status(404, "Not Found") }
        if b == 0 { throw RequestRejection.status(404, "Not Found") }
        out.append(b)
    }
    return out
}

private func hex(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - 48
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - 87
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - 55
    default: return nil
    }
}

/// Merges slashes and resolves dot segments (Apache's ap_getparents and
/// MergeSlashes); a path that climbs above the root is refused.
private func normalize(_ path: [UInt8]) throws -> [UInt8] {
    let trailing = path.count > 1 && path.last == UInt8(ascii: "/")
    var segments: [ArraySlice<UInt8>] = []
    for segment in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
        if segment.elementsEqual([UInt8(ascii: ".")]) { continue }
        if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
            if segments.isEmpty { throw RequestRejection.status(400, "Bad Request") }
            segments.removeLast()
            continue
        }
        segments.append(segment)
    }
    var out: [UInt8] = [UInt8(ascii: "/")]
    out += segments.map(Array.init).joined(separator: [UInt8(ascii: "/")])
    if trailing && !segments.isEmpty { out.append(UInt8(ascii: "/")) }
    return out
}

/// The variables as the ABI's pairs, all strings in one buffer, valid during `body`.
