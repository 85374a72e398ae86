import Tensor

extension Checkpoint {
    /// A checkpoint written with the first versions' names ("conv1.weight", "fc.bias", and
    /// their "optimizer.…" state) renamed to the model's ("0.weight", "10.bias"); any other file
    /// is returned as it is.
    public static func renamingLegacyNames(_ tensors: [String: Tensor], for model: Model) -> [String: Tensor] {
        guard let spec = model.spec, let first = model.parameters.first, tensors[first.name] == nil else { return tensors }
        let names = spec.legacyNames(inputShape: model.inputShape)
        var renamed: [String: Tensor] = [:]
        for (key, tensor) in tensors {
            let isState = key.hasPrefix(optimizerPrefix)
            let rest = isState ? String(key.dropFirst(optimizerPrefix.count)) : key
            let parts = rest.split(separator: ".", maxSplits: 1).map(String.init)
            if parts.count == 2, let index = names[parts[0]] {
                renamed[(isState ? optimizerPrefix : "") + index + "." + parts[1]] = tensor
            } else {
                renamed[key] = tensor
            }
        }
        return renamed
    }
}
