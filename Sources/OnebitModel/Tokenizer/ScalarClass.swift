/// The character classes the known pre-tokenizer patterns distinguish.
///
/// `\p{L}` and `\p{N}` are general categories L* and N*; `\s` is the Unicode `White_Space` property, as in the
/// Oniguruma and Rust `regex` engines that Hugging Face `tokenizers` uses (so U+001C...U+001F are not spaces).
enum ScalarClass: UInt8 {
    case letter
    case number
    /// `\r` or `\n`: white space that some patterns single out.
    case newline
    case space
    case other

    init(_ scalar: Unicode.Scalar) {
        if scalar.value < 128 {
            self = ScalarClass.ascii[Int(scalar.value)]
            return
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = scalar.properties.isWhitespace ? .space : .other
        }
    }

    var isWhitespace: Bool { self == .space || self == .newline }

    private static let ascii: [ScalarClass] = (0..<128).map { value in
        switch UInt8(value) {
        case UInt8(ascii: "\r"), UInt8(ascii: "\n"): .newline
        case 0x09, 0x0B, 0x0C, 0x20: .space
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): .number
        default: .other
        }
    }
}

extension Unicode.Scalar {
    /// A word character as the Rust `regex` crate's `\w` defines it: alphabetic, a mark, a decimal digit, a
    /// connector punctuation or a join control.
    var isWordCharacter: Bool {
        if isASCII {
            let byte = UInt8(value)
            return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x5F
        }
        let properties = self.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
