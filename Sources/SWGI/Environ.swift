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
    /// Everything, in one object shared by copies until one of them changes
    /// (copy on write): passing an environ along costs one reference.
    private final class Storage {
        /// The variables as the server received them; `nil` for an environ
        /// made from a dictionary. Counted as one of the source's readers
        /// while this storage lives.
        let source: EnvironSource?
        // Read on every lookup; changed only through `unique` (copy on
        // write), so no access can overlap a change: the runtime's dynamic
        // exclusivity check (a call per lookup) is left out.
        /// Changes made to this copy: values set, keys removed.
        @exclusivity(unchecked) var changes: [String: Change]
        /// `swgi.input` and `swgi.errors`, once made (see `host`).
        @exclusivity(unchecked) var madeInput: RequestInput?
        @exclusivity(unchecked) var madeErrors: ErrorStream?
        /// What they are made from when first asked for, for a server that
        /// passed its request instead of the two objects (the bridge: a
        /// request that reads no body and logs nothing makes neither).
        let host: (any RequestHost)?
        var version: (major: Int, minor: Int) = SWGI.version
        /// Set explicitly, or nil: then derived from `HTTPS` when read.
        var urlScheme: String?
        var multithread: Bool
        var multiprocess: Bool
        var runOnce: Bool
        var fileWrapper: FileWrapper?
        var objects: [String: Any] = [:]

        init(source: EnvironSource?, changes: [String: Change], input: RequestInput?, errors: ErrorStream?,
             host: (any RequestHost)? = nil,
             urlScheme: String?, multithread: Bool, multiprocess: Bool, runOnce: Bool, fileWrapper: FileWrapper?) {
            self.source = source
            self.changes = changes
            self.madeInput = input
            self.madeErrors = errors
            self.host = host
            self.urlScheme = urlScheme
            self.multithread = multithread
            self.multiprocess = multiprocess
            self.runOnce = runOnce
            self.fileWrapper = fileWrapper
            source?.readers.add(1, ordering: .sequentiallyConsistent)
        }

        deinit {
            source?.readers.subtract(1, ordering: .sequentiallyConsistent)
        }

        // Read by the environ's getters: made on first use, then kept (a
        // copy of the environ shares them: copy() makes them first).
        var input: RequestInput {
            get {
                if let madeInput { return madeInput }
                let made = host.map { RequestInput(source: $0) } ?? RequestInput(bytes: [])
                madeInput = made
                return made
            }
            set { madeInput = newValue }
        }

        var errors: ErrorStream {
            get {
                if let madeErrors { return madeErrors }
                let made = host.map { host in ErrorStream { host.logError($0) } } ?? ErrorStream()
                madeErrors = made
                return made
            }
            set { madeErrors = newValue }
        }

        func copy() -> Storage {
            let c = Storage(source: source, changes: changes, input: input, errors: errors, urlScheme: urlScheme,
                            multithread: multithread, multiprocess: multiprocess, runOnce: runOnce,
                            fileWrapper: fileWrapper)
            c.version = version
            c.objects = objects
            return c
        }
    }

    private var storage: Storage

    /// The storage, copied first if another environ shares it.
    private var unique: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&storage) {
                storage = storage.copy()
            }
            return storage
        }
    }

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
    public var input: RequestInput {
        get { storage.input }
        set { unique.input = newValue }
    }
    /// `swgi.errors`: lines written here go to the server's error log.
    public var errors: ErrorStream {
        get { storage.errors }
        set { unique.errors = newValue }
    }
    /// `swgi.version`.
    public var version: (major: Int, minor: Int) {
        get { storage.version }
        set { unique.version = newValue }
    }
    /// `swgi.url_scheme`: `http` or `https`. Unless set, it follows the
    /// `HTTPS` variable (see ``scheme(https:)``), read when asked for.
    public var urlScheme: String {
        get { storage.urlScheme ?? Environ.scheme(https: self["HTTPS"]) }
        set { unique.urlScheme = newValue }
    }
    /// `swgi.multithread`: other requests may be served at the same time on other threads.
    public var multithread: Bool {
        get { storage.multithread }
        set { unique.multithread = newValue }
    }
    /// `swgi.multiprocess`: other requests may be served by other processes.
    public var multiprocess: Bool {
        get { storage.multiprocess }
        set { unique.multiprocess = newValue }
    }
    /// `swgi.run_once`: the process will serve this one request.
    public var runOnce: Bool {
        get { storage.runOnce }
        set { unique.runOnce = newValue }
    }
    /// `swgi.file_wrapper`, when the server offers one.
    public var fileWrapper: FileWrapper? {
        get { storage.fileWrapper }
        set { unique.fileWrapper = newValue }
    }
    /// Objects middleware hands to the applications it wraps, by key (a
    /// session, a user), as WSGI middleware puts objects in its environ.
    public var objects: [String: Any] {
        get { storage.objects }
        set { unique.objects = newValue }
    }

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
        storage = Storage(source: nil, changes: variables.mapValues { .string($0) }, input: input, errors: errors,
                          urlScheme: urlScheme,
                          multithread: multithread, multiprocess: multiprocess, runOnce: runOnce,
                          fileWrapper: fileWrapper)
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
        storage = Storage(source: source, changes: [:], input: input, errors: errors,
                          urlScheme: nil,
                          multithread: multithread, multiprocess: multiprocess, runOnce: runOnce,
                          fileWrapper: fileWrapper)
    }

    /// An environ over a server's variables whose `swgi.input` and
    /// `swgi.errors` are made from `host` when first used.
    package init(
        source: EnvironSource,
        host: any RequestHost,
        multithread: Bool,
        multiprocess: Bool,
        runOnce: Bool,
        fileWrapper: FileWrapper?
    ) {
        storage = Storage(source: source, changes: [:], input: nil, errors: nil, host: host,
                          urlScheme: nil,
                          multithread: multithread, multiprocess: multiprocess, runOnce: runOnce,
                          fileWrapper: fileWrapper)
    }

    /// Sends `swgi.errors`' last unterminated line, if the stream was made.
    func flushErrors() {
        storage.madeErrors?.flush()
    }

    /// A string value; setting `nil` removes the key.
    public subscript(key: String) -> String? {
        get {
            let storage = storage
            if !storage.changes.isEmpty, let change = storage.changes[key] { return change.string }
            return storage.source?.string(for: key)
        }
        set { unique.changes[key] = newValue.map { .string($0) } ?? .removed }
    }

    /// Every string-valued key: CGI variables and server keys. This decodes
    /// every value; ask for single keys with the subscript where you can.
    public var variables: [String: String] {
        var all = storage.source?.dictionary() ?? [:]
        for (key, change) in storage.changes {
            all[key] = change.string
        }
        return all
    }

    /// The exact bytes of a value as the server received them.
    public func bytes(_ key: String) -> [UInt8]? {
        if !storage.changes.isEmpty, let change = storage.changes[key] {
            switch change {
            case .removed: return nil
            case .string(let s): return Array(s.utf8)
            case .bytes(let raw, _): return raw
            }
        }
        return storage.source?.bytes(for: key)
    }

    /// Keys whose value was not valid UTF-8 (see ``bytes(_:)``).
    public var undecodableKeys: [String] {
        var keys = Set(storage.source?.undecodableKeys() ?? [])
        for (key, change) in storage.changes {
            if case .bytes = change { keys.insert(key) } else { keys.remove(key) }
        }
        return keys.sorted()
    }

    /// Sets a value from raw bytes: decoded as UTF-8, the bytes kept when invalid.
    public mutating func set(_ key: String, bytes: UnsafeRawBufferPointer) {
        let (string, valid) = EnvironBlock.decode(bytes)
        unique.changes[key] = valid ? .string(string) : .bytes(Array(bytes), string)
    }

    /// The source of this environ's variables, if another environ still reads
    /// it: a host asks at the end of a request whether the application kept
    /// the environ (a copy, or a changed copy that reads the same source),
    /// and if so gives the source a copy of the variables that outlives the
    /// request.
    public mutating func sharedSource() -> EnvironSource? {
        guard let source = storage.source else { return nil }
        if isKnownUniquelyReferenced(&storage) && source.readers.load(ordering: .sequentiallyConsistent) == 1 {
            return nil
        }
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
