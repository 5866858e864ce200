public func broken() -> Int {
    return undefinedNameForTheTest
}
