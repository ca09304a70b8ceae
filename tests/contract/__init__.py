"""The runtime contract suite: one set of behaviours every `Runtime` implementation must show."""
