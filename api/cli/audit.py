"""placeholder: trustctl audit (being written)."""
