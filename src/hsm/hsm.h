/*
 * HSM access through PKCS#11 (any module; SoftHSM2 by default).
 *
 * The HSM holds one non-extractable AES-256 master key (CKA_SENSITIVE=true,
 * CKA_EXTRACTABLE=false), found by label; the KMS wraps tenant-key versions and
 * its own private keys with it. Wrapping is AES-256-GCM performed inside the HSM
 * (C_Encrypt/C_Decrypt with CKM_AES_GCM): wrapped = iv(12) || ciphertext || tag(16),
 * the AAD binds the wrapped value to its purpose (e.g. tenant id + key version).
 *
 * SoftHSM2 set-up: when `softhsm_dir` is given, the module is pointed at its own
 * configuration file (SOFTHSM2_CONF = DIR/softhsm2.conf, tokens in DIR/tokens) —
 * never the system one — and a token with `token_label` is created and its user
 * PIN set on first use.
 *
 * Thread-safety: a cf_hsm may be used from several threads; operations are
 * serialised on one PKCS#11 session by an internal mutex. PKCS#11 state is
 * process-wide: open at most one cf_hsm per module per process.
 */
#ifndef COFFER_HSM_HSM_H
#define COFFER_HSM_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"

#define CF_HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define CF_HSM_WRAP_OVERHEAD (12 + 16)

typedef struct cf_hsm cf_hsm;

typedef struct {
    const char *module;       /* PKCS#11 module path; NULL = CF_HSM_DEFAULT_MODULE */
    const char *token_label;  /* token to use (<= 32 chars); NULL = "coffer" */
    const char *pin;          /* user PIN (secret; never logged) */
    const char *so_pin;       /* SO PIN, only used to initialise a new SoftHSM2 token */
    const char *softhsm_dir;  /* if set: private SoftHSM2 config + token directory, auto-init */
    const char *master_label; /* master key label; NULL = "coffer-master-key" */
    bool create_master;       /* create the master key if it does not exist */
} cf_hsm_opts;

/* Loads the module, logs in, finds (or creates) the master key. Errors are
 * CF_E_HSM with a precise detail ("cannot load PKCS#11 module ...", "HSM login
 * failed: incorrect PIN", "HSM token is locked", "master key ... not found"). */
int cf_hsm_open(const cf_hsm_opts *opts, cf_hsm **ret) CF_WUR;
void cf_hsm_close(cf_hsm *hsm);

/* AES-256-GCM under the master key, inside the HSM. out receives iv||ct||tag. */
int cf_hsm_wrap(cf_hsm *hsm, const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                cf_buf *out) CF_WUR;
/* Inverse of cf_hsm_wrap; out should be a secret buffer. CF_E_DECRYPT if the tag
 * or the AAD does not match. */
int cf_hsm_unwrap(cf_hsm *hsm, const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
                  cf_buf *out) CF_WUR;

/* Random bytes from the HSM's generator. */
int cf_hsm_random(cf_hsm *hsm, uint8_t *out, size_t n) CF_WUR;

/* Reads the master key's protection attributes (for tests and `coffer` diagnostics). */
int cf_hsm_master_attrs(cf_hsm *hsm, bool *ret_sensitive, bool *ret_extractable) CF_WUR;
/* Tries to read the master key's value; must fail (returns 0 if the HSM refused). */
int cf_hsm_master_value_refused(cf_hsm *hsm) CF_WUR;

#endif
