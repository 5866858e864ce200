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
    /// The string-valued keys: CGI variables and server keys.
    public private(set) var variables: [String: String]
    /// Exact bytes of the values that were not valid UTF-8, by key.
    private var undecodable: [String: [UInt8]]

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
        self.variables = variables
        self.undecodable = [:]
        self.input = input
        self.errors = errors
        self.urlScheme = urlScheme ?? Environ.scheme(https: variables["HTTPS"])
        self.multithread = multithread
        self.multiprocess = multiprocess
        self.runOnce = runOnce
        self.fileWrapper = fileWrapper
    }

    /// A string value; setting `nil` removes the key.
    public subscript(key: String) -> String? {
        get { variables[key] }
        set {
            variables[key] = newValue
            undecodable[key] = nil
        }
    }

    /// The exact bytes of a value as the server received them.
    public func bytes(_ key: String) -> [UInt8]? {
        if let raw = undecodable[key] { return raw }
        return variables[key].map { Array($0.utf8) }
    }

    /// Keys whose value was not valid UTF-8 (see ``bytes(_:)``).
    public var undecodableKeys: Dictionary<String, [UInt8]>.Keys { undecodable.keys }

    /// Sets a value from raw bytes: decoded as UTF-8, the bytes kept when invalid.
    public mutating func set(_ key: String, bytes: UnsafeRawBufferPointer) {
        let buffer = bytes.bindMemory(to: UInt8.self)
        if let s = String(validating: buffer, as: UTF8.self) {
            variables[key] = s
            undecodable[key] = nil
        } else {
            variables[key] = String(decoding: buffer, as: UTF8.self)
            undecodable[key] = Array(buffer)
        }
    }

    public var requestMethod: String { variables["REQUEST_METHOD"] ?? "GET" }
    public var scriptName: String { variables["SCRIPT_NAME"] ?? "" }
    public var pathInfo: String { variables["PATH_INFO"] ?? "" }
    public var queryString: String { variables["QUERY_STRING"] ?? "" }

    /// `https` when the `HTTPS` variable says so (`1`, `on`, `yes`, `true`), else `http`.
    public static func scheme(https: String?) -> String {
        switch https?.lowercased() {
        case "1", "on", "yes", "true": return "https"
        default: return "http"
        }
    }
}
