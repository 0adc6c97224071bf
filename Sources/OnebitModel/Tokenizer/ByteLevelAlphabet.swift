/// The GPT-2 byte-level alphabet: every byte is shown as one printable character so that BPE can work on text.
///
/// Printable Latin-1 bytes (`!`...`~`, `¡`...`¬`, `®`...`ÿ`) stand for themselves; the other 68 bytes are given the
/// characters U+0100, U+0101, ... in byte order.
enum ByteLevelAlphabet {
    /// The character that stands for each byte.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte each alphabet character stands for, indexed by scalar value; -1 where the scalar is not in it.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    /// Replaces each UTF-8 byte of `scalars` by its alphabet character.
    static func encode(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count)
        for scalar in scalars {
            if scalar.isASCII {
                result.append(scalarForByte[Int(scalar.value)])
            } else {
                for byte in UTF8.encode(scalar)! { result.append(scalarForByte[Int(byte)]) }
            }
        }
        return result
    }

    /// The bytes a vocabulary entry stands for, or its own UTF-8 when any character is outside the alphabet
    /// (added tokens such as `<|eot_id|>` written in plain text).
    static func decode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for scalar in text.unicodeScalars {
            let value = Int(scalar.value)
            guard value < byteForScalar.count, byteForScalar[value] >= 0 else { return Array(text.utf8) }
            bytes.append(UInt8(byteForScalar[value]))
        }
        return bytes
    }
}
