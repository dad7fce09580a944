"""The kernel every authority builds on: algorithms, identifiers, storage, the audit log."""
