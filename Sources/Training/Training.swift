// The Training module; see the README's Architecture section.
