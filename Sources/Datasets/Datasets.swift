// The Datasets module; see the README's Architecture section.
