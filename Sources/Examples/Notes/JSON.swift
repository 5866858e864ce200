/// Just enough JSON for Notes (RFC 8259): parsing a request body and quoting
/// strings in answers.
enum JSON: Equatable {
    case object([String: JSON])
    case array([JSON])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    struct Invalid: Error {}

    static func parse(_ bytes: [UInt8]) throws -> JSON {
        var parser = Parser(bytes: bytes)
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.at == bytes.count else { throw Invalid() }
        return value
    }

    /// `text` as a JSON string literal.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private struct Parser {
        let bytes: [UInt8]
        var at = 0

        mutating func skipSpace() {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
        }

        mutating func value(depth: Int) throws -> JSON {
            guard depth < 64 else { throw Invalid() }
            skipSpace()
            guard at < bytes.count else { throw Invalid() }
            switch bytes[at] {
            case UInt8(ascii: "{"):
                at += 1
                var fields: [String: JSON] = [:]
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(fields) }
                while true {
                    skipSpace()
                    let name = try string()
                    skipSpace()
                    try expect(":")
                    fields[name] = try value(depth: depth + 1)
                    skipSpace()
                    if try next(",", or: "}") { return .object(fields) }
                }
            case UInt8(ascii: "["):
                at += 1
                var items: [JSON] = []
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    if try next(",", or: "]") { return .array(items) }
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                let start = at
                while at < bytes.count, "+-.eE0123456789".utf8.contains(bytes[at]) { at += 1 }
                guard let n = Double(String(decoding: bytes[start..<at], as: UTF8.self)) else { throw Invalid() }
                return .number(n)
            }
        }

        /// After an item: true at `close`, false after a `,`.
        mutating func next(_ comma: Character, or close: Character) throws -> Bool {
            guard at < bytes.count else { throw Invalid() }
            let c = bytes[at]
            at += 1
            if c == close.asciiValue { return true }
            if c == comma.asciiValue { return false }
            throw Invalid()
        }

        mutating func expect(_ c: Character) throws {
            guard at < bytes.count, bytes[at] == c.asciiValue else { throw Invalid() }
            at += 1
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard at + w.count <= bytes.count, Array(bytes[at..<(at + w.count)]) == w else { throw Invalid() }
            at += w.count
        }

        mutating func string() throws -> String {
            try expect("\"")
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
            while at < bytes.count {
                let c = bytes[at]
                at += 1
                switch c {
                case UInt8(ascii: "\""):
                    flush()
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    flush()
                    guard at < bytes.count else { throw Invalid() }
                    let e = bytes[at]
                    at += 1
                    switch e {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{8}")
                    case UInt8(ascii: "f"): scalars.append("\u{c}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        if (0xD800..<0xDC00).contains(code) {  // a surrogate pair
                            try expect("\\")
                            try expect("u")
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw Invalid() }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw Invalid() }
                        scalars.append(scalar)
                    default: throw Invalid()
                    }
                case 0..<0x20:
                    throw Invalid()
                default:
                    raw.append(c)
                }
            }
            throw Invalid()
        }

        mutating func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count,
                  let n = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16) else { throw Invalid() }
            at += 4
            return n
        }
    }
}
