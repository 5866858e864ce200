// The environ as JSON, keys sorted: for checking a deployment.
//
// String values appear as they are; the typed swgi.* values by their type
// (swgi.input, swgi.errors and swgi.file_wrapper as "<RequestInput>",
// "<ErrorStream>" and "<FileWrapper>").
// Values whose bytes were not valid UTF-8 are also listed, as hex, under
// "(undecodable)".
import SWGIBridge

struct EnvironDump: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        var entries: [(String, String)] = environ.variables.map { ($0.key, JSON.string($0.value)) }
        entries.append(("swgi.version", "[\(environ.version.major), \(environ.version.minor)]"))
        entries.append(("swgi.url_scheme", JSON.string(environ.urlScheme)))
        entries.append(("swgi.input", JSON.string("<RequestInput>")))
        entries.append(("swgi.errors", JSON.string("<ErrorStream>")))
        entries.append(("swgi.multithread", String(environ.multithread)))
        entries.append(("swgi.multiprocess", String(environ.multiprocess)))
        entries.append(("swgi.run_once", String(environ.runOnce)))
        if environ.fileWrapper != nil {
            entries.append(("swgi.file_wrapper", JSON.string("<FileWrapper>")))
        }
        let undecodable = environ.undecodableKeys.sorted().map { key in
            (key, JSON.string((environ.bytes(key) ?? []).map(JSON.hex).joined(separator: " ")))
        }
        if !undecodable.isEmpty {
            entries.append(("(undecodable)", JSON.object(undecodable)))
        }
        let body = JSON.object(entries) + "\n"
        try startResponse("200 OK", [("Content-Type", "application/json; charset=utf-8")])
        return [Chunk(body)]
    }
}

enum JSON {
    static func object(_ entries: [(String, String)]) -> String {
        let members = entries.sorted { $0.0 < $1.0 }.map { "  \(string($0.0)): \($0.1)" }
        return "{\n" + members.joined(separator: ",\n") + "\n}"
    }

    static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u00" + hex(UInt8(scalar.value))
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(EnvironDump()) }
