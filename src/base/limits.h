/*
 * Every input limit in one place (STYLE.md). Change a limit here, nowhere else.
 * Sections per layer; a module adds its limits to its own section.
 */
#ifndef COFFER_BASE_LIMITS_H
#define COFFER_BASE_LIMITS_H

/* ---- base / JSON ---- */
#define CF_JSON_MAX_BYTES (1u << 20)        /* any JSON document we parse */
#define CF_JSON_MAX_DEPTH 32                /* nesting of arrays/objects */
#define CF_JSON_MAX_STRING (64u * 1024)     /* one JSON string value */
#define CF_CONFIG_MAX_BYTES (256u * 1024)   /* configuration file */
#define CF_CONFIG_MAX_OPTIONS 256           /* entries in one program's config schema */
#define CF_CONFIG_MAX_KEY 64                /* "kms.listen" */
#define CF_CONFIG_MAX_VALUE 4096            /* one value (string, path, secret) */
#define CF_CONFIG_MAX_SECRET_FILE 4096      /* a secret given as @/path/to/file */
#define CF_ID_MAX_LEN 128                   /* ids: tenant, principal, tee, otk, request */
#define CF_NAME_MAX_LEN 128                 /* human names: deployment, job */

/* ---- crypto ---- */
#define CF_HPKE_MAX_INFO 1024               /* HPKE info / exporter context */
#define CF_HPKE_MAX_PSK 256
#define CF_HPKE_MAX_PSK_ID 256
#define CF_HPKE_MAX_IKM 256                 /* DeriveKeyPair input keying material */
#define CF_HPKE_MAX_EXPORT (255u * 64)      /* RFC 9180 §5.3: 255 * Nh, largest Nh (SHA-512) */
#define CF_JWT_MAX_BYTES (16u * 1024)       /* compact JWS token */
#define CF_JWT_MAX_HEADER_BYTES 2048        /* decoded protected header */
#define CF_JWK_MAX_BYTES 4096               /* one JWK */
#define CF_JWKS_MAX_KEYS 32
#define CF_JWKS_MAX_BYTES (CF_JWKS_MAX_KEYS * CF_JWK_MAX_BYTES) /* one JWK Set document */
#define CF_JWK_KID_MAX_LEN 128              /* "kid" of a JWK / JWS header */
#define CF_JOSE_MAX_NAME_LEN 32             /* enumerated JOSE values: kty, crv, alg, use */
#define CF_JWK_MAX_KEY_OPS 16               /* entries of a JWK "key_ops" array */
#define CF_JWT_MAX_LEEWAY 600               /* seconds of clock skew a verifier may allow */
#define CF_JWT_MAX_TYP_LEN 128              /* "typ" of a JWS header */
#define CF_JWT_MAX_AUD 16                   /* entries of an "aud" array */
#define CF_JWT_MAX_TIME 253402300799LL      /* NumericDate bound: 9999-12-31T23:59:59Z */
#define CF_KEY_MAX_PEM_BYTES 4096           /* one PEM key (P-384 PKCS#8 is ~310 bytes) */

/* ---- proto (envelope CFE1 / CFR1, DESIGN.md §5) ---- */
#define CF_ENV_MAX_HEADER 4096              /* JSON header of a CFE1 envelope */
#define CF_ENV_MAX_PAYLOAD (8u << 20)       /* plaintext of one request / result */
#define CF_ENV_MAX_BYTES (CF_ENV_MAX_PAYLOAD + CF_ENV_MAX_HEADER + 1024)
#define CF_ENV_MAX_RESPONSE_BYTES (CF_ENV_MAX_PAYLOAD + 64) /* CFR1: magic, nonce, status, tag */

/* ---- http ---- */
#define CF_HTTP_MAX_BODY (1u << 20)         /* JSON API bodies */
#define CF_HTTP_MAX_ENVELOPE_BODY CF_ENV_MAX_BYTES
#define CF_HTTP_MAX_URL 2048
#define CF_HTTP_MAX_HEADER_VALUE 8192
#define CF_HTTP_CLIENT_TIMEOUT_MS 30000
#define CF_HTTP_CLIENT_CONNECT_TIMEOUT_MS 5000
#define CF_HTTP_MAX_PATH_SEGMENTS 16        /* segments in a route pattern or request path */
#define CF_HTTP_MAX_PARAMS 8                /* {param} segments in one route */
#define CF_HTTP_MAX_PARAM_NAME 32           /* length of a {param} name */
#define CF_HTTP_MAX_PATTERN 256             /* length of a route pattern */
#define CF_HTTP_MAX_METHOD 16               /* length of a request method token */
#define CF_HTTP_MAX_QUERY_PARAMS 32         /* query parameters kept per request */
#define CF_HTTP_MAX_ROUTES 256              /* routes in one server */
#define CF_HTTP_MAX_REQUEST_ID 63           /* X-Request-Id; fits the log line's request id field */
#define CF_HTTP_MAX_RESP_HEADERS 16         /* extra headers a handler may add */
#define CF_HTTP_MAX_DRAIN (1u << 20)        /* over-cap chunked body discarded before dropping the connection */
#define CF_HTTP_CONN_MEMORY (32u * 1024)    /* MHD per-connection pool: request line + headers */
#define CF_HTTP_MAX_CONNECTIONS 1024        /* default connection limit of a server */
#define CF_HTTP_CONN_TIMEOUT_S 30           /* default idle timeout of a server connection */
#define CF_HTTP_MAX_THREADS 64              /* server thread pool size */
#define CF_HTTP_MAX_PEM_BYTES (64u * 1024)  /* one PEM file: certificate chain, key or CA bundle */
#define CF_HTTP_MAX_CAPTURED_HEADER 256     /* a response header kept by the client (Content-Type, ...) */
#define CF_SPIFFE_ID_MAX_LEN 2048           /* SPIFFE ID spec §2.3 (URI SAN of an X509-SVID) */
#define CF_PKI_MAX_SANS 16                  /* DNS + IP SANs of one issued certificate */

/* ---- attestation evidence ---- */
#define CF_SNP_REPORT_SIZE 1184
#define CF_CERT_MAX_BYTES (16u * 1024)      /* one DER/PEM certificate */
#define CF_MANIFEST_MAX_BYTES (256u * 1024)
#define CF_SNP_PRODUCT_NAME_MAX 31          /* VCEK productName1 (IA5String), e.g. "Milan-B0" */
#define CF_SNP_CSP_ID_MAX 127               /* VLEK cspId (IA5String) */
#define CF_SNP_ROOTS_PEM_MAX (64u * 1024)   /* one ASK/ASVK + ARK PEM bundle */
#define CF_SNP_CHAIN_CACHE_MAX 4096         /* entries in a cf_snp_chain_cache */
#define CF_TEE_KEY_MAX_LEN 256              /* TEE public key bound into report_data */
#define CF_MANIFEST_MAX_DEPLOYMENTS 256
#define CF_MANIFEST_MAX_MEASUREMENTS 64     /* per deployment and platform */
#define CF_MANIFEST_MAX_JOBS 64             /* per deployment */
#define CF_MANIFEST_MAX_ROOTS 16            /* pinned roots per platform */
#define CF_MANIFEST_MAX_ROOT_CHAIN (32u * 1024) /* PEM text of one inline root chain */
#define CF_MANIFEST_MAX_CHIP_IDS 1024       /* chip-ID allow-list entries */
#define CF_MANIFEST_MAX_KEY_TEXT 1024       /* developer key (base64url or PEM) */

/* ---- simulated secure processor, hardware providers, measurement (docs/internals/simulator.md) ---- */
#define CF_SIM_KEY_MAX_BYTES 8192           /* one PEM private key in the simulator state (RSA-4096 PKCS#8 ~3.3 KiB) */
#define CF_SIM_TCB_SPEC_MAX 128             /* --tcb "bl=4,tee=0,snp=22,ucode=213" */
#define CF_LAUNCHER_MAX_ERROR 256           /* error text in a launcher response */
#define CF_LAUNCHER_TIMEOUT_MS 10000        /* launcher provider: wait for a response */
#define CF_LAUNCHER_MAX_RESPONSE (12u + 4u + CF_SNP_REPORT_SIZE + 4u + CF_CERT_MAX_BYTES)
#define CF_TSM_MAX_OUTBLOB (32u * 1024)     /* configfs-tsm outblob (kernel TSM_OUTBLOB_MAX) */
#define CF_TSM_MAX_AUXBLOB (64u * 1024)     /* configfs-tsm auxblob (SNP certificate table) */
#define CF_TSM_MAX_ATTR 64                  /* small configfs-tsm attributes: generation, provider */
#define CF_TSM_MAX_ATTEMPTS 4               /* report reads retried when generation changes */
#define CF_SNP_CERT_TABLE_MAX_ENTRIES 16    /* GHCB certificate table entries (without terminator) */
#define CF_SNP_EXT_CERTS_MAX (64u * 1024)   /* SNP_GET_EXT_REPORT certificate buffer */
#define CF_BUNDLE_MAX_ENTRIES 4096          /* files + symlinks + directories in a deployment bundle */
#define CF_BUNDLE_MAX_BYTES (512ull << 20)  /* total file bytes in a deployment bundle */
#define CF_BUNDLE_MAX_DEPTH 16              /* directory nesting below the bundle root */
#define CF_BUNDLE_MAX_PATH 1024             /* relative path or symlink target in a bundle */
#define CF_TEE_BINARY_MAX_BYTES (256ull << 20) /* TEE runtime executable measured by coffer-launch */

/* ---- store (src/store, DESIGN.md §8) ---- */
#define CF_STORE_MAX_DSN 1024               /* "sqlite:/path" or "postgres://..." */
#define CF_STORE_MAX_SQL (64u * 1024)       /* one parameterized statement */
#define CF_STORE_MAX_SCRIPT (1u << 20)      /* one migration step (several statements) */
#define CF_STORE_MAX_PARAMS 64              /* bound values per statement */
#define CF_STORE_MAX_VALUE (16u << 20)      /* one bound or fetched text/blob value */
#define CF_STORE_MAX_MIGRATIONS 1024        /* steps passed to cf_store_migrate */
#define CF_STORE_BUSY_TIMEOUT_MS 5000       /* wait for a lock before reporting busy */
#define CF_STORE_TX_MAX_ATTEMPTS 8          /* cf_store_tx: tries on busy/serialization failure */
#define CF_STORE_TX_BACKOFF_MAX_MS 100      /* cf_store_tx: cap of the randomized back-off */
#define CF_STORE_PG_CONNECT_TIMEOUT_S 10    /* libpq connect_timeout unless the DSN sets one */

/* ---- audit log (src/merkle, src/auditlog; docs/internals/audit-log.md) ---- */
#define CF_MERKLE_MAX_PROOF 64              /* hashes in an inclusion / consistency proof (tree size < 2^63) */
#define CF_MERKLE_MAX_SIZE (1ull << 62)     /* leaves in one tree (seq fits a signed 64-bit column) */
#define CF_AUDIT_MAX_EVENT_BYTES (16u * 1024) /* one event: input text and canonical entry */
#define CF_AUDIT_MAX_DETAILS_BYTES (8u * 1024) /* canonical "details" object of one event */
#define CF_AUDIT_MAX_DETAILS_DEPTH 8        /* nesting inside "details" */
#define CF_AUDIT_MAX_SERVICE_LEN 64         /* "kms", "gateway" */
#define CF_AUDIT_MAX_ACTOR_LEN 256          /* principal id or SPIFFE id of the caller */
#define CF_AUDIT_MAX_ACTION_LEN 64          /* "kms.otk.release" */
#define CF_AUDIT_MAX_RESOURCE_LEN 512       /* "otk/8f1c..." */
#define CF_AUDIT_MAX_BATCH 1000             /* events in one append batch */
#define CF_AUDIT_MAX_BATCH_BYTES (1u << 20) /* JSON body of one append batch ({"events":[...]}) */
#define CF_AUDIT_MAX_PAGE 1000              /* entries or tree heads in one query page */
#define CF_AUDIT_MAX_STORED_ENTRY (1u << 20) /* an entry read back from the store: above any valid
                                               event, so a tampered one is still shown */
#define CF_AUDIT_MAX_STH_JSON 2048          /* one signed tree head as JSON */
#define CF_AUDIT_MAX_PROOF_JSON 8192        /* one proof as JSON (64 hex hashes + sizes) */
#define CF_AUDIT_MAX_PROBLEMS 64            /* findings a verifier report keeps (then counts) */
#define CF_AUDIT_MAX_VERIFY_STHS 100000     /* tree heads one local verification checks */
#define CF_AUDIT_MAX_VERIFY_ENTRIES (4u << 20) /* entries one in-memory verification holds */

/* ---- kms: tenant keys, data keys, wrapped values (src/kms/keys.h, docs/internals/kms-keys.md) ---- */
#define CF_KMS_KEY_LEN 32                   /* tenant-key versions and data keys: AES-256 */
#define CF_KMS_MAX_PLAINTEXT (64u * 1024)   /* one value for cf_kms_keys_encrypt */
#define CF_KMS_MAX_CONTEXT 1024             /* caller context bound into a wrapped value's AAD */
#define CF_KMS_WRAPPED_OVERHEAD (4u + 4u + 12u + 16u) /* "CFW1", u32 version, nonce, tag */
#define CF_KMS_MAX_WRAPPED (CF_KMS_MAX_PLAINTEXT + CF_KMS_WRAPPED_OVERHEAD)
#define CF_KMS_MAX_KEY_VERSION 0x7fffffffu  /* versions 1..2^31-1: a u32 on the wire, a BIGINT in the store */
#define CF_KMS_MAX_REASON 256               /* revocation / destruction reason text */
#define CF_KMS_CACHE_DEFAULT 1024           /* unwrapped key versions kept in locked memory */
#define CF_KMS_CACHE_MAX 65536
#define CF_KMS_ROTATE_MIN_S 60              /* shortest rotate_every (seconds) */
#define CF_KMS_ROTATE_MAX_S (3660ull * 86400) /* longest rotate_every: ~10 years */
#define CF_KMS_ROTATE_BATCH 64              /* due tenants rotated per cf_kms_keys_rotate_due call */
#define CF_KMS_STORE_POOL 8                 /* idle store handles a cf_kms_keys keeps open */
#define CF_KMS_MAX_LIST 256                 /* key versions returned by one listing call */

#endif
