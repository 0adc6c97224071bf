/// The element type of a GGUF tensor (ggml's `ggml_type`).
///
/// Every type whose block geometry is known is listed, not only those onebit decodes: the reader needs each
/// tensor's size to check that it lies inside the file, and an error can then name the type it cannot convert.
/// Ids 36 and up differ between ggml forks; 36 is bitnet.cpp's `I2_S`, the others are refused.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    /// 32-bit float.
    case f32 = 0
    /// IEEE half.
    case f16 = 1
    /// ggml `Q4_0`.
    case q4Zero = 2
    /// ggml `Q4_1`.
    case q4One = 3
    /// ggml `Q5_0`.
    case q5Zero = 6
    /// ggml `Q5_1`.
    case q5One = 7
    /// ggml `Q8_0`: blocks of 32 int8 with an fp16 scale.
    case q8Zero = 8
    /// ggml `Q8_1`.
    case q8One = 9
    /// ggml `Q2_K`.
    case q2K = 10
    /// ggml `Q3_K`.
    case q3K = 11
    /// ggml `Q4_K`.
    case q4K = 12
    /// ggml `Q5_K`.
    case q5K = 13
    /// ggml `Q6_K`: 256-element super-blocks of 6-bit values with 16 int8 sub-scales.
    case q6K = 14
    /// ggml `Q8_K`.
    case q8K = 15
    /// ggml `IQ2_XXS`.
    case iq2XXS = 16
    /// ggml `IQ2_XS`.
    case iq2XS = 17
    /// ggml `IQ3_XXS`.
    case iq3XXS = 18
    /// ggml `IQ1_S`.
    case iq1S = 19
    /// ggml `IQ4_NL`.
    case iq4NL = 20
    /// ggml `IQ3_S`.
    case iq3S = 21
    /// ggml `IQ2_S`.
    case iq2S = 22
    /// ggml `IQ4_XS`.
    case iq4XS = 23
    /// 8-bit integer.
    case i8 = 24
    /// 16-bit integer.
    case i16 = 25
    /// 32-bit integer.
    case i32 = 26
    /// 64-bit integer.
    case i64 = 27
    /// 64-bit float.
    case f64 = 28
    /// ggml `IQ1_M`.
    case iq1M = 29
    /// bfloat16.
    case bf16 = 30
    /// llama.cpp ternary `TQ1_0`: base-3 packed trits, fp16 scale per 256 weights.
    case tq1Zero = 34
    /// llama.cpp ternary `TQ2_0`: 2-bit codes, fp16 scale per 256 weights.
    case tq2Zero = 35
    /// bitnet.cpp ternary `I2_S`: 2-bit codes over the whole tensor, one float scale after them.
    case i2S = 36

    /// The name ggml prints for the type.
    public var name: String {
        switch self {
        case .f32: "f32"
        case .f16: "f16"
        case .q4Zero: "q4_0"
        case .q4One: "q4_1"
        case .q5Zero: "q5_0"
        case .q5One: "q5_1"
        case .q8Zero: "q8_0"
        case .q8One: "q8_1"
        case .q2K: "q2_K"
        case .q3K: "q3_K"
        case .q4K: "q4_K"
        case .q5K: "q5_K"
        case .q6K: "q6_K"
        case .q8K: "q8_K"
        case .iq2XXS: "iq2_xxs"
        case .iq2XS: "iq2_xs"
        case .iq3XXS: "iq3_xxs"
        case .iq1S: "iq1_s"
        case .iq4NL: "iq4_nl"
        case .iq3S: "iq3_s"
        case .iq2S: "iq2_s"
        case .iq4XS: "iq4_xs"
        case .i8: "i8"
        case .i16: "i16"
        case .i32: "i32"
        case .i64: "i64"
        case .f64: "f64"
        case .iq1M: "iq1_m"
        case .bf16: "bf16"
        case .tq1Zero: "tq1_0"
        case .tq2Zero: "tq2_0"
        case .i2S: "i2_s"
        }
    }

    /// Elements per block and bytes per block; a row must hold whole blocks.
    private var blockGeometry: (elements: Int, bytes: Int) {
        switch self {
        case .f32, .i32: (1, 4)
        case .f16, .bf16, .i16: (1, 2)
        case .f64, .i64: (1, 8)
        case .i8: (1, 1)
        case .q4Zero, .iq4NL: (32, 18)
        case .q4One: (32, 20)
        case .q5Zero: (32, 22)
        case .q5One: (32, 24)
        case .q8Zero: (32, 34)
        case .q8One: (32, 36)
        case .q2K: (256, 84)
        case .q3K, .iq3S: (256, 110)
        case .q4K: (256, 144)
        case .q5K: (256, 176)
        case .q6K: (256, 210)
        case .q8K: (256, 292)
        case .iq2XXS, .tq2Zero: (256, 66)
        case .iq2XS: (256, 74)
        case .iq3XXS: (256, 98)
        case .iq1S: (256, 50)
        case .iq2S: (256, 82)
        case .iq4XS: (256, 136)
        case .iq1M: (256, 56)
        case .tq1Zero: (256, 54)
        // I2_S is not block-structured; ``byteCount(elementCount:rowLength:)`` special-cases it.
        case .i2S: (4, 1)
        }
    }

    /// Elements one block holds; a row length must be a multiple of it.
    public var blockSize: Int { blockGeometry.elements }

    /// Bytes a tensor of `elementCount` elements in rows of `rowLength` occupies, or `nil` when the rows do not
    /// hold whole blocks. `I2_S` stores 2-bit codes for the whole tensor followed by a 32-byte tail that holds
    /// the scale.
    func byteCount(elementCount: Int, rowLength: Int) -> Int? {
        let (elements, bytes) = blockGeometry
        guard rowLength % elements == 0, elementCount % elements == 0 else { return nil }
        let blocks = elementCount / elements
        let (total, overflow) = blocks.multipliedReportingOverflow(by: bytes)
        guard !overflow else { return nil }
        return self == .i2S ? total + 32 : total
    }
}
