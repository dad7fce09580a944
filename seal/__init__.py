"""The electronic seal authority (GB/T 38540, GM/T 0031)."""
