extension GGUFFile {
    /// The integer at `key`, `nil` when absent; throws when present with another type.
    func integer(_ key: String) throws(ModelLoadError) -> Int? {
        try typed(key, "an integer") { $0.integer }
    }

    /// The integer at `key`; throws when absent.
    func requiredInteger(_ key: String) throws(ModelLoadError) -> Int {
        guard let value = try integer(key) else { throw .invalidConfig("the GGUF metadata lacks \(key)") }
        return value
    }

    /// The floating-point number at `key` (f32 or f64), `nil` when absent.
    func float(_ key: String) throws(ModelLoadError) -> Float? {
        try typed(key, "a float") { $0.floatingPoint.map(Float.init) }
    }

    /// The string at `key`, `nil` when absent.
    func string(_ key: String) throws(ModelLoadError) -> String? {
        try typed(key, "a string") { $0.string }
    }

    /// The bool at `key`, `nil` when absent.
    func bool(_ key: String) throws(ModelLoadError) -> Bool? {
        try typed(key, "a bool") { $0.bool }
    }

    /// The array of strings at `key`, `nil` when absent.
    func strings(_ key: String) throws(ModelLoadError) -> [String]? {
        try typed(key, "an array of strings") { value in
            guard let elements = value.array else { return nil }
            var strings: [String] = []
            strings.reserveCapacity(elements.count)
            for element in elements {
                guard let string = element.string else { return nil }
                strings.append(string)
            }
            return strings
        }
    }

    /// The array of integers at `key`, `nil` when absent.
    func integers(_ key: String) throws(ModelLoadError) -> [Int]? {
        try typed(key, "an array of integers") { value in
            guard let elements = value.array else { return nil }
            var integers: [Int] = []
            integers.reserveCapacity(elements.count)
            for element in elements {
                guard let integer = element.integer else { return nil }
                integers.append(integer)
            }
            return integers
        }
    }

    private func typed<T>(
        _ key: String, _ expected: String, _ convert: (GGUFValue) -> T?
    ) throws(ModelLoadError) -> T? {
        guard let value = metadata[key] else { return nil }
        guard let converted = convert(value) else {
            throw .malformed(path: file.path, detail: "metadata \(key) is \(value.typeName), expected \(expected)")
        }
        return converted
    }
}
