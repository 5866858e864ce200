import Foundation
import SWGIHosting

/// One application to serve: a library and where it is mounted.
struct Mount {
    var url: String
    let library: String
    let entry: String
}

/// Turns the APP arguments into mounts: `lib.so`, a SwiftPM package folder
/// (built in release; each dynamic-library product served), `URL=APP`.
func resolveApplications(_ args: [String], entry: String) throws -> [Mount] {
    var mounts: [Mount] = []
    for arg in args {
        var url: String?
        var target = arg
        if arg.hasPrefix("/"), let eq = arg.firstIndex(of: "="), !FileManager.default.fileExists(atPath: arg) {
            url = String(arg[..<eq])
            target = String(arg[arg.index(after: eq)...])
        }
        let path = URL(fileURLWithPath: target).standardized.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Failure("\(target) does not exist: give an application library (.so) or a SwiftPM package folder.")
        }
        if isDirectory.boolValue {
            let libraries = try buildPackage(path)
            if libraries.count == 1, let url {
                mounts.append(Mount(url: url, library: libraries[0], entry: entry))
            } else {
                for lib in libraries {
                    let name = URL(fileURLWithPath: lib).deletingPathExtension().lastPathComponent.dropFirst(3)
                    mounts.append(Mount(url: (url ?? "") + "/" + name.lowercased(), library: lib, entry: entry))
                }
            }
        } else {
            do {
                _ = try loadApplication(path: path, entry: entry)
            } catch {
                throw Failure("\(error). Is \(target) an SWGI application library? "
                              + "It exports its application with @c(swgi_entry_\(entry)).")
            }
            let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            mounts.append(Mount(url: url ?? "/" + (name.hasPrefix("lib") ? String(name.dropFirst(3)) : name).lowercased(),
                                library: path, entry: entry))
        }
    }
    // A single application without a URL is served at the root, as mod_wsgi-express does.
    if mounts.count == 1, !args[0].contains("=") {
        mounts[0].url = "/"
    }
    for m in mounts where !m.url.hasPrefix("/") {
        throw Failure("mount point \(m.url) must begin with /")
    }
    return mounts
}

/// Builds a package's products in release; returns its dynamic libraries.
func buildPackage(_ directory: String) throws -> [String] {
    guard FileManager.default.fileExists(atPath: directory + "/Package.swift") else {
        throw Failure("\(directory) is a folder without a Package.swift: give an application library (.so) or a SwiftPM package folder.")
    }
    guard let swift = which(["swift"], extra: []) else {
        throw Failure("swift is not on PATH: a package cannot be built without the Swift toolchain.")
    }
    warn("swgi-express: building \(directory) (release)...")
    do {
        try run(swift, ["build", "-c", "release", "--package-path", directory])
    } catch {
        throw Failure("building the package at \(directory) failed:\n\(error)")
    }
    let bin = try run(swift, ["build", "-c", "release", "--package-path", directory, "--show-bin-path"])
        .trimmingCharacters(in: .whitespacesAndNewlines)
    let description = try run(swift, ["package", "--package-path", directory, "describe", "--type", "json"])
    guard let json = try JSONSerialization.jsonObject(with: Data(description.utf8)) as? [String: Any],
          let products = json["products"] as? [[String: Any]] else {
        throw Failure("cannot read the products of the package at \(directory)")
    }
    let libraries = products.compactMap { product -> String? in
        guard let name = product["name"] as? String,
              let type = product["type"] as? [String: Any],
              let library = type["library"] as? [String], library.contains("dynamic") else { return nil }
        let path = bin + "/lib\(name).so"
        return (try? loadApplication(path: path, entry: "application")) != nil ? path : nil
    }
    guard !libraries.isEmpty else {
        throw Failure("the package at \(directory) has no dynamic-library product that exports an SWGI application "
                      + "(@c(swgi_entry_application)).")
    }
    return libraries
}
