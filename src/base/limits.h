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
#define CF_ID_MAX_LEN 128                   /* ids: tenant, principal, tee, otk, request */
#define CF_NAME_MAX_LEN 128                 /* human names: deployment, job */

/* ---- crypto ---- */
#define CF_HPKE_MAX_INFO 1024               /* HPKE info / exporter context */
#define CF_HPKE_MAX_PSK 256
#define CF_HPKE_MAX_EXPORT 8160             /* 255 * Nh for SHA-256 */
#define CF_JWT_MAX_BYTES (16u * 1024)       /* compact JWS token */
#define CF_JWT_MAX_HEADER_BYTES 2048        /* decoded protected header */
#define CF_JWK_MAX_BYTES 4096               /* one JWK */
#define CF_JWKS_MAX_KEYS 32

/* ---- proto (envelope CFE1 / CFR1, DESIGN.md §5) ---- */
#define CF_ENV_MAX_HEADER 4096              /* JSON header of a CFE1 envelope */
#define CF_ENV_MAX_PAYLOAD (8u << 20)       /* plaintext of one request / result */
#define CF_ENV_MAX_BYTES (CF_ENV_MAX_PAYLOAD + CF_ENV_MAX_HEADER + 1024)

/* ---- http ---- */
#define CF_HTTP_MAX_BODY (1u << 20)         /* JSON API bodies */
#define CF_HTTP_MAX_ENVELOPE_BODY CF_ENV_MAX_BYTES
#define CF_HTTP_MAX_URL 2048
#define CF_HTTP_MAX_HEADER_VALUE 8192
#define CF_HTTP_CLIENT_TIMEOUT_MS 30000

/* ---- attestation evidence ---- */
#define CF_SNP_REPORT_SIZE 1184
#define CF_CERT_MAX_BYTES (16u * 1024)      /* one DER/PEM certificate */
#define CF_MANIFEST_MAX_BYTES (256u * 1024)

#endif
