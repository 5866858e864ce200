/// What the server knows about one request: the CGI variables
/// (`REQUEST_METHOD`, `SCRIPT_NAME`, `PATH_INFO`, `QUERY_STRING`, `HTTP_*`,
/// ...), the server's own keys (`mod_swgi.*`), and the typed `swgi.*` values.
///
/// It is a value: middleware changes its copy and passes it on.
///
/// ```swift
/// let method = environ["REQUEST_METHOD"] ?? "GET"
/// var inner = environ
/// inner["SCRIPT_NAME"] = environ.scriptName + "/admin"
/// ```
///
/// ## Bytes that are not UTF-8
/// Values are decoded as UTF-8. Where the request carried bytes that are not
/// valid UTF-8 (a `PATH_INFO` from `%FF`, a header with Latin-1 text), the
/// string holds U+FFFD in their place and ``bytes(_:)`` returns the exact bytes
/// the server received. Nothing is dropped.
public struct Environ {
    /// The variables as the server received them; `nil` for an environ made
    /// from a dictionary.
    private var source: EnvironSource?
    /// Changes made to this copy: values set, keys removed.
    private var changes: [String: Change] = [:]

    private enum Change {
        case removed
        case string(String)
        /// Bytes that are not valid UTF-8, and their decoding with U+FFFD.
        case bytes([UInt8], String)

        var string: String? {
            switch self {
            case .removed: return nil
            case .string(let s), .bytes(_, let s): return s
            }
        }
    }

    /// `swgi.input`: the request body.
    public var input: RequestInput
    /// `swgi.errors`: lines written here go to the server's error log.
    public var errors: ErrorStream
    /// `swgi.version`.
    public var version: (major: Int, minor: Int) = SWGI.version
    /// `swgi.url_scheme`: `http` or `https`.
    public var urlScheme: String
    /// `swgi.multithread`: other requests may be served at the same time on other threads.
    public var multithread: Bool
    /// `swgi.multiprocess`: other requests may be served by other processes.
    public var multiprocess: Bool
    /// `swgi.run_once`: the process will serve this one request.
    public var runOnce: Bool
    /// `swgi.file_wrapper`, when the server offers one.
    public var fileWrapper: FileWrapper?
    /// Objects middleware hands to the applications it wraps, by key (a
    /// session, a user), as WSGI middleware puts objects in its environ.
    public var objects: [String: Any] = [:]

    public init(
        variables: [String: String],
        input: RequestInput = RequestInput(bytes: []),
        errors: ErrorStream = ErrorStream(),
        urlScheme: String? = nil,
        multithread: Bool = false,
        multiprocess: Bool = false,
        runOnce: Bool = false,
        fileWrapper: FileWrapper? = nil
    ) {
        self.source = nil
        self.changes = variables.mapValues { .string($0) }
        self.input = input
        self.errors = errors
        self.urlScheme = urlScheme ?? Environ.scheme(https: variables["HTTPS"])
        self.multithread = multithread
        self.multiprocess = multiprocess
        self.runOnce = runOnce
        self.fileWrapper = fileWrapper
    }

    /// An environ over the variables a server received (see ``EnvironSource``).
    public init(
        source: EnvironSource,
        input: RequestInput,
        errors: ErrorStream,
        multithread: Bool,
        multiprocess: Bool,
        runOnce: Bool,
        fileWrapper: FileWrapper?
    ) {
        self.source = source
        self.input = input
        self.errors = errors
        self.urlScheme = Environ.scheme(https: source.string(for: "HTTPS"))
        self.multithread = multithread
        self.multiprocess = multiprocess
        self.runOnce = runOnce
        self.fileWrapper = fileWrapper
    }

    /// A string value; setting `nil` removes the key.
    public subscript(key: String) -> String? {
        get {
            if !changes.isEmpty, let change = changes[key] { return change.string }
            return source?.string(for: key)
        }
        set { changes[key] = newValue.map { .string($0) } ?? .removed }
    }

    /// Every string-valued key: CGI variables and server keys. This decodes
    /// every value; ask for single keys with the subscript where you can.
    public var variables: [String: String] {
        var all = source?.dictionary() ?? [:]
        for (key, change) in changes {
            all[key] = change.string
        }
        return all
    }

    /// The exact bytes of a value as the server received them.
    public func bytes(_ key: String) -> [UInt8]? {
        if !changes.isEmpty, let change = changes[key] {
            switch change {
            case .removed: return nil
            case .string(let s): return Array(s.utf8)
            case .bytes(let raw, _): return raw
            }
        }
        return source?.bytes(for: key)
    }

    /// Keys whose value was not valid UTF-8 (see ``bytes(_:)``).
    public var undecodableKeys: [String] {
        var keys = Set(source?.undecodableKeys() ?? [])
        for (key, change) in changes {
            if case .bytes = change { keys.insert(key) } else { keys.remove(key) }
        }
        return keys.sorted()
    }

    /// Sets a value from raw bytes: decoded as UTF-8, the bytes kept when invalid.
    public mutating func set(_ key: String, bytes: UnsafeRawBufferPointer) {
        let (string, valid) = EnvironBlock.decode(bytes)
        changes[key] = valid ? .string(string) : .bytes(Array(bytes), string)
    }

    /// The source of this environ's variables, if another copy of the
    /// environ still reads it: a host asks at the end of a request whether
    /// the application kept the environ, and if so gives the source a copy
    /// of the variables that outlives the request.
    public mutating func sharedSource() -> EnvironSource? {
        guard source != nil, !isKnownUniquelyReferenced(&source!) else { return nil }
        return source
    }

    public var requestMethod: String { self["REQUEST_METHOD"] ?? "GET" }
    public var scriptName: String { self["SCRIPT_NAME"] ?? "" }
    public var pathInfo: String { self["PATH_INFO"] ?? "" }
    public var queryString: String { self["QUERY_STRING"] ?? "" }

    /// `https` when the `HTTPS` variable says so (`1`, `on`, `yes`, `true`), else `http`.
    public static func scheme(https: String?) -> String {
        switch https?.lowercased() {
        case "1", "on", "yes", "true": return "https"
        default: return "http"
        }
    }
}
