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
#define CF_AUDIT_MAX_TIME_MS 253402300799999LL /* event ts / tree-head timestamp: 9999-12-31T23:59:59.999Z */
#define CF_AUDIT_MAX_PROBLEMS 64            /* findings a verifier report keeps (then counts) */
#define CF_AUDIT_MAX_VERIFY_STHS 100000     /* tree heads one local verification checks */
#define CF_AUDIT_MAX_VERIFY_ENTRIES (4u << 20) /* entries one in-memory verification holds */

/* ---- audit service, forwarder, `coffer audit` (src/audit, src/svc; docs/internals/audit-service.md) ---- */
#define CF_AUDITSVC_STORE_POOL 8            /* idle store handles kept by the audit service */
#define CF_AUDITSVC_PAGE_DEFAULT 100        /* entries / tree heads in a page unless ?limit= */
#define CF_AUDITSVC_MAX_PAGE_BYTES (4u << 20) /* JSON of one entries page (a page stops early beyond it;
                                               below the gateway's CF_GW_MAX_PROXY_RESPONSE) */
#define CF_AUDITSVC_STH_INTERVAL_DEFAULT_S 10 /* audit.sth_interval default */
#define CF_AUDITSVC_STH_INTERVAL_MAX_S 86400 /* longest audit.sth_interval */
#define CF_AUDITSVC_MAX_QUERY_TIME 40       /* ?since= / ?until=: RFC 3339 text or unix milliseconds */
#define CF_AUDIT_FWD_BACKOFF_MIN_MS 200     /* forwarder: first retry after a failed batch */
#define CF_AUDIT_FWD_BACKOFF_MAX_MS 10000   /* ... doubled up to this */
#define CF_AUDIT_FWD_POLL_MS 1000           /* forwarder looks at its spool at least this often */
#define CF_AUDIT_FWD_TIMEOUT_MS 10000       /* one POST of a batch to the audit service */
#define CF_AUDIT_FWD_CONNECT_TIMEOUT_MS 2000
#define CF_AUDIT_CLI_MAX_RESPONSE (8u << 20) /* one answer read by `coffer audit` (CF_GW_MAX_PROXY_RESPONSE) */
#define CF_AUDIT_CLI_MAX_STATE (16u * 1024) /* the saved tree head and pinned key (audit-sth.json) */
#define CF_AUDIT_CLI_MAX_KEY_TEXT 4096      /* --public-key: a JWK, PEM or base64url key */
#define CF_AUDIT_CLI_TAIL_DEFAULT 20        /* entries `coffer audit tail` shows unless -n */
#define CF_AUDIT_CLI_FOLLOW_MS 2000         /* `coffer audit tail --follow` polling period */

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

/* ---- kms service: one-time keys, TEE registry, HTTP API (src/kms/kms.h, docs/internals/kms.md) ---- */
#define CF_KMS_OTK_LEN 32                   /* one-time key: 32 random bytes (DESIGN.md §4) */
#define CF_KMS_OTK_TTL_DEFAULT 120          /* otk.ttl default, seconds */
#define CF_KMS_OTK_TTL_MAX 3600             /* longest otk.ttl */
#define CF_KMS_OTK_RETAIN_S 3600            /* released/expired OTK rows (no key material) kept so a late
                                               release gets 409/410 rather than 404, then deleted */
#define CF_KMS_RELEASE_SKEW_S 60            /* |now - ts| allowed in a release request */
#define CF_KMS_RELEASE_REQ_MAX 512          /* plaintext of a sealed release request */
#define CF_KMS_RELEASE_PT_MAX 1024          /* plaintext of a sealed release response */
#define CF_KMS_NONCE_TTL_S 60               /* registry nonces: single use, this long */
#define CF_KMS_MAX_LIVE_NONCES 4096         /* unexpired nonces at once (POST /v1/registry/nonce is open) */
#define CF_KMS_JOIN_TTL_MAX (30u * 86400)   /* longest join-token lifetime, seconds */
#define CF_KMS_JOIN_MAX_USES 10000          /* registrations one join token allows */
#define CF_KMS_JOIN_RETAIN_S 86400          /* expired or used-up join tokens kept, then deleted */
#define CF_KMS_REATTEST_DEFAULT_S 60        /* reattest.interval default; stale after 2x */
#define CF_KMS_REATTEST_MAX_S 86400         /* longest reattest.interval */
#define CF_KMS_TICK_MAX_S 5                 /* background task period (shorter for short intervals) */
#define CF_KMS_PURGE_MIN_INTERVAL_S 1       /* purge on issue at most this often per process */
#define CF_KMS_TASK_BATCH 256               /* rows one background step handles (stale TEEs, purges) */
#define CF_KMS_MAX_BODY (32u * 1024)        /* JSON body of a registry / OTK / key-admin request */
#define CF_KMS_MAX_DATA_BODY (128u * 1024)  /* JSON body of encrypt / decrypt / rewrap (base64url of
                                               CF_KMS_MAX_WRAPPED plus context) */
#define CF_KMS_LIST_DEFAULT 100             /* TEEs in one listing page unless ?limit= */
#define CF_KMS_LIST_MAX 1000                /* largest ?limit= of a TEE listing */
#define CF_KMS_MAX_ENDPOINT 512             /* a TEE's base URL in the registry (the gateway's CF_GW_MAX_ENDPOINT) */

/* ---- iam: tenants, principals, API keys, access tokens (src/iam, docs/internals/iam.md) ---- */
#define CF_IAM_MAX_BODY 4096                /* JSON body of any IAM API request */
#define CF_IAM_MAX_REASON 256               /* optional reason text of disable / revoke */
#define CF_IAM_TOKEN_TTL_DEFAULT 300        /* access token lifetime (s), config iam.token_ttl */
#define CF_IAM_TOKEN_TTL_MAX 3600           /* longest iam.token_ttl */
#define CF_IAM_APIKEY_TTL_DEFAULT (90ull * 86400) /* API key lifetime when the request names none */
#define CF_IAM_APIKEY_TTL_MAX (730ull * 86400)    /* longest API key lifetime: 2 years */
#define CF_IAM_LAST_USED_GRANULARITY_S 60   /* last_used_at written at most once a minute per key */
#define CF_IAM_MAX_LIST 256                 /* tenants / principals / keys in one listing page */
#define CF_IAM_MAX_KEYS_PER_PRINCIPAL 64    /* unrevoked, unexpired API keys of one principal */
#define CF_IAM_SIGNING_KEYS_MAX 8           /* non-retired signing keys (current + overlap) */
#define CF_IAM_ROTATE_DEFAULT_S (30ull * 86400) /* iam.signing_key_rotate_every */
#define CF_IAM_ROTATE_MIN_S 3600
#define CF_IAM_ROTATE_MAX_S (366ull * 86400)
#define CF_IAM_OVERLAP_DEFAULT_S 7200       /* iam.signing_key_overlap: old key stays in the JWKS */
#define CF_IAM_OVERLAP_MAX_S (7ull * 86400)
#define CF_IAM_KEYRING_REFRESH_S 10         /* re-read signing keys from the store (other replicas) */
#define CF_IAM_MAINTAIN_INTERVAL_S 60       /* automatic rotation / retirement check */
#define CF_IAM_STORE_POOL 8                 /* idle store handles kept by the IAM core */
#define CF_IAM_RL_SLOTS 4096                /* failed-attempt counters (key ids), bounded memory */
#define CF_IAM_RL_WINDOW_S 60               /* failed-attempt window */
#define CF_IAM_RL_MAX_FAILS 10              /* failures per key id per window, then 429 */
#define CF_IAM_RL_UNKNOWN_MAX 100           /* failures with unknown / malformed key ids per window */

/* ---- tee: TEE runtime, deployment bundles, job sandbox (src/tee, docs/internals/tee.md) ---- */
#define CF_TEE_MANIFEST_MAX_BYTES (64u * 1024) /* coffer.json of a bundle */
#define CF_TEE_SIG_MAX_BYTES 256            /* coffer.sig: base64url Ed25519 signature + newline */
#define CF_TEE_MAX_ENDPOINT CF_KMS_MAX_ENDPOINT /* advertised URL (advertise_url) */
#define CF_TEE_MAX_JOBS 64                  /* jobs in one bundle (= CF_MANIFEST_MAX_JOBS) */
#define CF_TEE_MAX_ARGS 32                  /* "args" of one job */
#define CF_TEE_MAX_ARG_LEN 1024             /* one argument */
#define CF_TEE_VERSION_MAX_LEN 64           /* bundle "version" */
#define CF_TEE_MAX_CPU_S 3600               /* limits.cpu_s */
#define CF_TEE_MAX_MEMORY_MB 16384          /* limits.memory_mb (address space) */
#define CF_TEE_MAX_OUTPUT_KB ((CF_ENV_MAX_PAYLOAD - 1u) / 1024u) /* limits.output_kb: output + status byte fit a CFR1 */
#define CF_TEE_MAX_TIMEOUT_MS 600000u       /* limits.timeout_ms (wall clock) */
#define CF_TEE_MAX_JOB_BINARY (256u << 20)  /* one job executable copied into memory */
#define CF_TEE_MAX_STDERR 4096              /* job stderr kept for a failure report (rest discarded) */
#define CF_TEE_MAX_REASON 512               /* runtime's failure text in a non-zero-status response */
#define CF_TEE_SETUP_TIMEOUT_MS 5000        /* sandbox child: fork to execve */
#define CF_TEE_MAX_CONCURRENT_JOBS 64       /* sandbox.max_jobs upper bound */
#define CF_TEE_DEFAULT_CONCURRENT_JOBS 4    /* sandbox.max_jobs default */
#define CF_TEE_EVIDENCE_RATE 10             /* POST /v1/evidence: reports per second (token bucket) */
#define CF_TEE_EVIDENCE_BURST 20            /* ... and burst */
#define CF_TEE_KMS_MAX_RESPONSE (64u * 1024) /* any answer of the KMS to the TEE */
#define CF_TEE_RELEASE_MAX_PLAINTEXT 2048   /* sealed JSON of a release request / answer */
#define CF_TEE_REGISTER_BACKOFF_MIN_MS 200  /* registration retry: first back-off */
#define CF_TEE_REGISTER_BACKOFF_MAX_MS 5000 /* ... doubled up to this */
#define CF_TEE_REGISTER_WAIT_DEFAULT_S 60   /* kms.register_timeout default */
#define CF_TEE_REGISTER_WAIT_MAX_S 3600     /* kms.register_timeout upper bound */


/* ---- attestation service (src/attestsvc, docs/internals/attestation-service.md) ---- */
#define CF_ATTESTSVC_MAX_TEES 4096          /* TEEs in one registry listing / tracked by the scheduler */
#define CF_ATTESTSVC_REGISTRY_MAX_BYTES (8u << 20) /* KMS registry listing response */
#define CF_ATTESTSVC_REGISTRY_PAGE 1000     /* ?limit= asked of the KMS per listing page */
#define CF_ATTESTSVC_REGISTRY_MAX_PAGES 16  /* pages followed in one listing (then refused) */
#define CF_ATTESTSVC_TEE_MAX_RESPONSE (64u * 1024) /* TEE evidence response (report + cert, base64url) */
#define CF_ATTESTSVC_KMS_MAX_RESPONSE (64u * 1024) /* KMS nonce / attestation-report responses */
#define CF_ATTESTSVC_MAX_REPORT 4096        /* report bytes accepted for verification (the verifier
                                               reports any length other than 1184 as a parse failure) */
#define CF_ATTESTSVC_MAX_BODY (64u * 1024)  /* JSON body of POST /v1/attestation/evidence, /verify */
#define CF_ATTESTSVC_MAX_PLATFORM_LEN 16    /* "sev-snp" */
#define CF_ATTESTSVC_MAX_STATUS_LEN 32      /* registry TEE status: "active", "quarantined", ... */
#define CF_ATTESTSVC_MAX_ENDPOINT 512       /* a TEE's base URL (registry "endpoint", tee.endpoints) */
#define CF_ATTESTSVC_MAX_ENDPOINTS_CONFIG 4096 /* bytes of the tee.endpoints option */
#define CF_ATTESTSVC_MAX_DISCOVERY 64       /* bare URLs in tee.endpoints probed to find a TEE by id */
#define CF_ATTESTSVC_MAX_CURSOR 256         /* registry listing cursor ("next") */
#define CF_ATTESTSVC_MAX_VERIFY_TEES 8      /* active TEEs one /verify call tries before giving up */
#define CF_ATTESTSVC_HISTORY_DEFAULT_PAGE 20 /* history items per page unless ?limit= */
#define CF_ATTESTSVC_HISTORY_MAX_PAGE 100   /* largest ?limit= */
#define CF_ATTESTSVC_ID_LEN 32              /* attestation ids: 32 lowercase hex (time-ordered) */
#define CF_ATTESTSVC_MAX_REASON 512         /* stored / alerted failure reason text */
#define CF_ATTESTSVC_MAX_FAILURES_JSON 8192 /* failed checks of one history record (JSON) */
#define CF_ATTESTSVC_INTERVAL_MIN_S 1       /* shortest reattest.interval */
#define CF_ATTESTSVC_INTERVAL_MAX_S 86400   /* longest reattest.interval */
#define CF_ATTESTSVC_TEE_TIMEOUT_MS 10000   /* default tee.timeout: one evidence request */
#define CF_ATTESTSVC_WEBHOOK_TIMEOUT_MS 3000 /* alert webhook: whole POST, best effort */
#define CF_ATTESTSVC_WEBHOOK_MAX_RESPONSE 4096 /* webhook answer read (and discarded) */
#define CF_ATTESTSVC_STORE_POOL 8           /* idle store handles kept by the service */
#define CF_ATTESTSVC_RATE_SLOTS 4096        /* per-source rate limiter: fixed table of buckets */
#define CF_ATTESTSVC_RATE_PROBE 8           /* slots probed per source before evicting the stalest */
#define CF_ATTESTSVC_RATE_KEY_MAX 64        /* source key: an IP address literal */
#define CF_ATTESTSVC_RATE_DEFAULT 10        /* ratelimit.rate default: requests per second per source */
#define CF_ATTESTSVC_RATE_BURST_DEFAULT 20  /* ratelimit.burst default */
#define CF_ATTESTSVC_RETENTION_DEFAULT_S (30ull * 86400) /* history.retention default */
#define CF_ATTESTSVC_PRUNE_BATCH 1000       /* history rows deleted per scheduler pass */
#define CF_ATTESTSVC_SIGNING_KEYS_MAX 8     /* signing keys published in the JWKS */

/* ---- gateway (src/gateway, docs/internals/gateway.md) ---- */
#define CF_GW_MAX_SESSION_BODY 1024         /* POST /v1/sessions {"job","nonce"} */
#define CF_GW_MAX_TOKEN_BODY 8192           /* POST /v1/iam/token (API key exchange) */
#define CF_GW_MAX_PROXY_BODY CF_HTTP_MAX_BODY /* request body forwarded to IAM / KMS / attestation / audit */
#define CF_GW_MAX_PROXY_RESPONSE (8u << 20) /* answer of a proxied service (audit pages are the largest) */
#define CF_GW_MAX_EVIDENCE_RESPONSE (64u * 1024) /* TEE answer to POST /v1/evidence */
#define CF_GW_MAX_ATTEST_RESPONSE (256u * 1024) /* attestation service answer (result + EAR token) */
#define CF_GW_MAX_REGISTRY_RESPONSE (8u << 20) /* one page of GET {kms}/v1/registry/tees */
#define CF_GW_REGISTRY_PAGE 1000            /* ?limit= asked of the KMS per listing page */
#define CF_GW_REGISTRY_MAX_PAGES 16         /* pages followed in one refresh (then refused) */
#define CF_GW_MAX_CURSOR 256                /* registry listing cursor ("next") */
#define CF_GW_MAX_TEES 4096                 /* TEEs in the registry view */
#define CF_GW_MAX_STATUS_LEN 32             /* registry TEE status: "active", "quarantined", ... */
#define CF_GW_MAX_ENDPOINT 512              /* a TEE's base URL */
#define CF_GW_MAX_KEY_TEXT 256              /* TEE public key / build hash text passed to the client */
#define CF_GW_REGISTRY_MIN_REFRESH_MS 250   /* on-demand refreshes (unknown TEE id) at most this often */
#define CF_GW_SESSION_MAX_TRIES 4           /* TEEs one POST /v1/sessions asks for evidence */
#define CF_GW_MAX_BUCKETS 16384             /* rate-limit buckets (tenants + source addresses) */
#define CF_GW_BUCKET_KEY_MAX 160            /* "t:<tenant>" or "ip:<address>" */
#define CF_GW_MAX_RATE 1000000              /* ratelimit.*rps and *burst upper bound */
#define CF_GW_MAX_RETRY_AFTER 3600          /* Retry-After we announce, seconds */
#define CF_GW_AUTH_CACHE_SLOTS 4096         /* verified access tokens remembered (by SHA-256) */
#define CF_GW_AUTH_CACHE_MAX_TTL 300        /* auth.cache_ttl upper bound, seconds */
#define CF_GW_MAX_IDLE_CLIENTS 64           /* idle upstream HTTP clients kept for reuse */
#define CF_GW_PROXY_MAX_DEPTH 6             /* path segments after /v1/<service> that are proxied */
#define CF_GW_METRIC_MAX_CODES 24           /* distinct status codes counted per route */

/* ---- sdk: the client library libcoffer (src/sdk, include/coffer.h, docs/SDK.md) ---- */
#define CF_SDK_HTTP_POOL 4                  /* HTTP connections one client keeps (parallel requests) */
#define CF_SDK_TEE_CACHE 64                 /* verified TEEs one client caches (one per job) */
#define CF_SDK_DEFAULT_RETRIES 1            /* retries on another TEE after a quarantined/revoked one */
#define CF_SDK_MAX_RETRIES 5                /* largest max_retries option */
#define CF_SDK_MAX_TIMEOUT_MS 600000        /* largest timeout_ms option (10 minutes) */
#define CF_SDK_MAX_PATH 4096                /* a file path option or the default client key path */
#define CF_SDK_MAX_API_KEY 1024             /* API key text */
#define CF_SDK_MAX_ERROR 1024               /* last-error message kept per thread */
#define CF_SDK_MAX_SERVICE_MESSAGE 512      /* "message" of a service's JSON error that is quoted */
#define CF_SDK_MAX_ERROR_CODE 64            /* "code" of a service's JSON error */
#define CF_SDK_MAX_TIME_TEXT 64             /* an RFC 3339 "expires_at" */
#define CF_SDK_TOKEN_REFRESH_MARGIN_S 30    /* refresh the access token this long before exp (at most a
                                               quarter of its lifetime) */
#define CF_SDK_EAR_LEEWAY_S 30              /* clock skew allowed on the EAR token's exp / iat */
#define CF_SDK_MAX_ID_ENCODED (3 * CF_ID_MAX_LEN) /* a percent-encoded id in a path or file name */

/* ---- cli: operator and user commands of `coffer` (src/cmd/coffer/api.h, docs/CLI.md) ---- */
#define CF_CLI_MAX_RESPONSE CF_GW_MAX_PROXY_RESPONSE /* one answer relayed by the gateway */
#define CF_CLI_MAX_PAGES 64                 /* listing pages one list command follows ("next") */
#define CF_CLI_MAX_ROLES 8                  /* --role options of `principal create` (> CF_ROLE_COUNT) */
#define CF_CLI_MAX_PATH 1024                /* request path + query built by a command */
#define CF_CLI_MAX_TIMEOUT_MS 600000        /* largest --timeout-ms */

#endif
