// The Tracking module; see the README's Architecture section.
