"""The electronic licence authority (GB/T 36901-36905)."""
