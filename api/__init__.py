"""HTTP (JSON API, OIDC, pages) and the `trustctl` CLI. Parses, authorises, calls a service, serialises."""
