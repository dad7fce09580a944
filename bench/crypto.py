"""SM2, SM3 and SM4 through our API beside `openssl speed` on the same machine, same run.

Reference and ours alternate, and each keeps its best run, so a burst of other load on
the machine hurts both sides alike. The SM2 message is 20 bytes, as in `openssl speed`.
SM4-GCM is compared with OpenSSL's SM4-CTR: OpenSSL 3.0 has no SM4-GCM, and GCM is CTR
plus GHASH, so a ratio near 1 means our path adds little.
"""

import os

from bench.timing import best_of, openssl_sm2, openssl_throughput, rate
from trust import sm4
from trust.algorithms import signature_algorithm
from trust.hashes import sm3

SECONDS = 3
BLOCK = 16384


def run() -> dict[str, float]:
    alg = signature_algorithm("SM2-with-SM3")
    key = alg.generate_key()
    public = key.public_key()
    message = os.urandom(20)
    signature = alg.sign(key, message)

    reference, ours_sign, ours_verify = [], [], []
    for _ in range(2):
        reference.append(openssl_sm2(SECONDS))
        ours_sign.append(rate(lambda: alg.sign(key, message), SECONDS))
        ours_verify.append(rate(lambda: alg.verify(public, message, signature), SECONDS))
    ref_sign = max(r[0] for r in reference)
    ref_verify = max(r[1] for r in reference)

    data = os.urandom(BLOCK)
    sm3_ours = best_of(2, lambda: rate(lambda: sm3(data), SECONDS)) * BLOCK
    sm3_ref = best_of(2, lambda: openssl_throughput("sm3", BLOCK, SECONDS))
    gcm_key, nonce = os.urandom(16), os.urandom(12)
    gcm_ours = best_of(2, lambda: rate(lambda: sm4.encrypt_gcm(gcm_key, nonce, data), SECONDS)) * BLOCK
    ctr_ref = best_of(2, lambda: openssl_throughput("sm4-ctr", BLOCK, SECONDS))

    return {
        "sm2_sign_per_s": round(max(ours_sign), 1),
        "openssl_sm2_sign_per_s": round(ref_sign, 1),
        "sm2_sign_ratio": round(max(ours_sign) / ref_sign, 3),
        "sm2_verify_per_s": round(max(ours_verify), 1),
        "openssl_sm2_verify_per_s": round(ref_verify, 1),
        "sm2_verify_ratio": round(max(ours_verify) / ref_verify, 3),
        "sm3_mb_per_s": round(sm3_ours / 1e6, 1),
        "openssl_sm3_mb_per_s": round(sm3_ref / 1e6, 1),
        "sm3_ratio": round(sm3_ours / sm3_ref, 3),
        "sm4_gcm_mb_per_s": round(gcm_ours / 1e6, 1),
        "openssl_sm4_ctr_mb_per_s": round(ctr_ref / 1e6, 1),
        "sm4_gcm_vs_openssl_ctr_ratio": round(gcm_ours / ctr_ref, 3),
    }
