public import CSWGIABI

#if canImport(Glibc)
import Glibc
#endif

/// An application library, loaded as mod_swgi loads it: dlopen with
/// RTLD_LOCAL, the entry point `swgi_entry_NAME`, the ABI version checked.
/// Shared by the hosts written in Swift (swgi-serve) and the tools that check
/// an application before serving it (swgi-express).
public struct LoadedApplication: @unchecked Sendable {
    public let table: UnsafePointer<swgi_app_v1>
    public let path: String
    public let entry: String

    /// The application's handle_async, when its table has one (an async
    /// application, which a host on an event loop runs without blocking).
    public var handleAsync: (@convention(c) (UnsafeMutableRawPointer?, UnsafePointer<swgi_request_v1>?,
                                              (@convention(c) (UnsafeMutableRawPointer?, Int32) -> Void)?) -> Int32)? {
        let end = MemoryLayout<swgi_app_v1>.offset(of: \swgi_app_v1.handle_async)! + MemoryLayout<UnsafeRawPointer>.size
        return Int(table.pointee.size) >= end ? table.pointee.handle_async : nil
    }
}

public struct LoadError: Error, CustomStringConvertible {
    public let description: String
}

/// Loads the application `entry` of the library at `path`; the error says
/// which file and why, in the words mod_swgi logs.
public func loadApplication(path: String, entry: String) throws -> LoadedApplication {
    _ = dlerror()
    guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
        throw LoadError(description: "cannot load SWGI application \(path): \(dlerror().map { String(cString: $0) } ?? "dlopen failed")")
    }
    let symbol = "swgi_entry_" + entry
    guard let address = dlsym(handle, symbol) else {
        throw LoadError(description: "cannot load SWGI application \(path): not an SWGI application: it exports no entry point '\(symbol)'")
    }
    typealias EntryPoint = @convention(c) () -> UnsafePointer<swgi_app_v1>?
    guard let table = unsafeBitCast(address, to: EntryPoint.self)() else {
        throw LoadError(description: "cannot load SWGI application \(path): entry point '\(symbol)' returned no application")
    }
    guard table.pointee.abi_version == SWGI_ABI_VERSION else {
        throw LoadError(description: "cannot load SWGI application \(path): built for SWGI ABI version \(table.pointee.abi_version), but swgi-serve speaks version \(SWGI_ABI_VERSION)")
    }
    // As mod_swgi: the first version of the table ended before `flags`.
    guard Int(table.pointee.size) >= MemoryLayout<swgi_app_v1>.offset(of: \swgi_app_v1.flags)!,
          table.pointee.handle != nil else {
        throw LoadError(description: "cannot load SWGI application \(path): incomplete application table")
    }
    return LoadedApplication(table: table, path: path, entry: entry)
}
