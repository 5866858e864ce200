// swgi-express: the mod_wsgi-express of SWGI.
import ArgumentParser

// `--setenv NAME VALUE` (the form the design names) becomes `--setenv NAME=VALUE`.
var arguments = Array(CommandLine.arguments.dropFirst())
var i = 0
while i < arguments.count {
    if arguments[i] == "--setenv", i + 2 < arguments.count, !arguments[i + 1].contains("=") {
        arguments[i + 1] += "=" + arguments[i + 2]
        arguments.remove(at: i + 2)
    }
    i += 1
}
SWGIExpress.main(arguments)
