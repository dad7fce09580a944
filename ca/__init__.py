"""The certificate authority: hierarchies, profiles, issuance, CRL, OCSP, timestamps."""
