"""Object identifiers of the algorithms this service knows, by their standard names."""

# GM/T 0006 (Chinese commercial cryptography OID arc 1.2.156.10197)
SM2_CURVE = "1.2.156.10197.1.301"  # sm2p256v1; also used as a key algorithm by some producers
SM2_SIGN = "1.2.156.10197.1.301.1"  # SM2-1 digital signature (ofdrw writes it in SignerInfo)
SM2_ENCRYPT = "1.2.156.10197.1.301.3"  # SM2-3 public key encryption
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM3 = "1.2.156.10197.1.401"
SM4_ECB = "1.2.156.10197.1.104.1"
SM4_CBC = "1.2.156.10197.1.104.2"
SM4_CTR = "1.2.156.10197.1.104.7"
SM4_GCM = "1.2.156.10197.1.104.8"

# International
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
P256 = "1.2.840.10045.3.1.7"
P384 = "1.3.132.0.34"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
ECDSA_SHA384 = "1.2.840.10045.4.3.3"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
RSA_PSS = "1.2.840.113549.1.1.10"
SHA256_RSA = "1.2.840.113549.1.1.11"
SHA384_RSA = "1.2.840.113549.1.1.12"
SHA512_RSA = "1.2.840.113549.1.1.13"
ED25519 = "1.3.101.112"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"
SHA512 = "2.16.840.1.101.3.4.2.3"
