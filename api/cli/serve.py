"""placeholder: trustctl serve (being written)."""
