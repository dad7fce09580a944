"""Key custody: the KeyStore protocol, its backends, key lifecycle and dual control."""
