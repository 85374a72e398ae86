// The Session module; see the README's Architecture section.
