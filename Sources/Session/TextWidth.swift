/// Text fitted to a column: cut to `width` characters, with … where it was cut. Paths keep
/// their end (`keepingEnd`), which tells them apart.
func cut(_ text: String, to width: Int, keepingEnd: Bool = false) -> String {
    guard text.count > width else { return text }
    guard width > 1 else { return String(text.prefix(width)) }
    return keepingEnd ? "…" + String(text.suffix(width - 1)) : String(text.prefix(width - 1)) + "…"
}
