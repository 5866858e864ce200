import Foundation

/// Where things are on this machine: Apache, its modules, mod_swgi.
struct Environment {
    let httpd: String
    let moduleDirectory: String
    let module: String

    static func find(module explicit: String?, httpd chosen: String? = nil) throws -> Environment {
        if let chosen, !FileManager.default.isExecutableFile(atPath: chosen) {
            throw Failure("Apache httpd not found at \(chosen). On Debian or Ubuntu: apt-get install apache2, "
                          + "or give another --httpd-executable.")
        }
        guard let httpd = chosen ?? which(["apache2", "httpd"], extra: ["/usr/sbin", "/usr/local/sbin", "/usr/local/apache2/bin"]) else {
            throw Failure("Apache httpd is not installed: neither apache2 nor httpd is on PATH or in /usr/sbin. "
                          + "On Debian or Ubuntu: apt-get install apache2 (and apache2-dev for apxs).")
        }
        let moduleDirectory = try modulesDirectory()
        return Environment(httpd: httpd, moduleDirectory: moduleDirectory, module: try findModule(explicit, moduleDirectory))
    }

    /// Apache's module folder: `apxs -q LIBEXECDIR`, or Debian's default.
    static func modulesDirectory() throws -> String {
        if let apxs = which(["apxs", "apxs2"], extra: ["/usr/bin"]),
           let dir = try? run(apxs, ["-q", "LIBEXECDIR"]).trimmingCharacters(in: .whitespacesAndNewlines), !dir.isEmpty {
            return dir
        }
        if FileManager.default.fileExists(atPath: "/usr/lib/apache2/modules/mod_mpm_event.so") {
            return "/usr/lib/apache2/modules"
        }
        throw Failure("cannot find Apache's module folder: apxs is missing. On Debian or Ubuntu: apt-get install apache2-dev.")
    }

    /// mod_swgi.so: --module, $SWGI_MODULE, the build tree beside this
    /// executable (.build/apache/), or the installed one.
    static func findModule(_ explicit: String?, _ moduleDirectory: String) throws -> String {
        if let explicit {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw Failure("mod_swgi.so not found at \(explicit).")
            }
            return URL(fileURLWithPath: explicit).standardized.path
        }
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["SWGI_MODULE"] { candidates.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(exe.appendingPathComponent("../../apache/mod_swgi.so").standardized.path)
        candidates.append(exe.appendingPathComponent("../apache/mod_swgi.so").standardized.path)
        candidates.append(moduleDirectory + "/mod_swgi.so")
        for path in candidates where FileManager.default.fileExists(atPath: path) {
            return URL(fileURLWithPath: path).standardized.path
        }
        throw Failure("mod_swgi.so not found: build it with scripts/build, install it with "
                      + "swgi-express install-module, or give its path with --module.")
    }
}

func which(_ names: [String], extra: [String]) -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
    for dir in path + extra {
        for name in names where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
    }
    return nil
}

/// Runs a program; returns its standard output; throws with its output on failure.
@discardableResult
func run(_ program: String, _ args: [String], directory: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = args
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: output, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw Failure(text + String(decoding: errors, as: UTF8.self))
    }
    return text
}
