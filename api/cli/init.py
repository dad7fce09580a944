"""placeholder: trustctl init (being written)."""
