"""Unified identity, authentication and the OIDC provider."""
