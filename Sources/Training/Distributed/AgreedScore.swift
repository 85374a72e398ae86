extension Trainer {
    /// The epoch's score as rank 0 measured it, on every rank. Every rank scores the split
    /// itself, and on identical hardware they all get the same bits; but a rank whose CPU takes
    /// other kernel paths (AVX-512 or not) could round differently, and the policy (best model,
    /// LR drop, early exit) must decide the same on every rank or they part ways.
    func agreedScore(_ evaluation: Evaluation) -> Evaluation {
        guard let group, group.ranks > 1 else { return evaluation }
        let all = group.allGather([evaluation.accuracy, evaluation.loss], during: "the scoring of epoch \(epochsDone)")
        var agreed = evaluation
        agreed.accuracy = all[0]
        agreed.loss = all[1]
        return agreed
    }
}
