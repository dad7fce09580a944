"""OFD layout documents (GB/T 33190) and their signature containers."""
