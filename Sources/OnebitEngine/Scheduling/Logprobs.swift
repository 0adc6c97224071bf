#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Log-probabilities of sampled tokens, as OpenAI's `logprobs` report them.
enum Logprobs {
    /// `log softmax(logits)` at `token`, and the `top` most likely tokens with theirs (most likely first, lower
    /// id first on ties). Tokens a constraint masked (logit minus infinity) are never alternatives: JSON has no
    /// way to write their log-probability.
    static func of(_ token: Int, in logits: [Float], top: Int) -> (Float, [TokenLogprob]) {
        let highest = logits.max() ?? 0
        var sum = 0.0
        for l in logits where l.isFinite { sum += exp(Double(l - highest)) }
        let logSum = Float(log(sum)) + highest
        var best: [Int] = []
        if top > 0 {
            for i in logits.indices where logits[i].isFinite {
                guard best.count < top || logits[i] > logits[best[best.count - 1]] else { continue }
                let at = best.firstIndex { logits[i] > logits[$0] } ?? best.count
                best.insert(i, at: at)
                if best.count > top { best.removeLast() }
            }
        }
        return (logits[token] - logSum, best.map { TokenLogprob(id: $0, logprob: logits[$0] - logSum) })
    }
}
