/*
 * Continuous attestation (DESIGN.md §3, §2 rule 4; docs/internals/attestation-service.md
 * "Re-attestation"): on the elected leader only, every active TEE of the registry
 * is re-attested every reattest.interval, jittered by +-10% per TEE:
 *
 *   KMS nonce  ->  TEE evidence bound to it  ->  own verification (manifest +
 *   registry entry)  ->  history record  ->  evidence posted to the KMS, which
 *   re-verifies it on its own and quarantines on failure.
 *
 * Alerts (audit event "tee.attestation_failed", a warn log line, the optional
 * webhook) when our verification fails, when the KMS does not accept the
 * report (it quarantined the TEE or refused), or when a TEE has been
 * unreachable for at least one interval.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attestsvc/history.h"
#include "attestsvc/leader.h"
#include "attestsvc/service.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "crypto/hash.h"
#include "proto/authz.h"

typedef struct {
    cf_attest_tee_entry e;
    uint64_t due_ms;        /* monotonic */
    int64_t unreachable_since; /* wall clock of the first failed contact since the last success; 0 = none */
    bool seen;              /* in the latest listing */
} tee_state;

typedef struct {
    cf_attestsvc *a;
    cf_attest_leader *leader;
    cf_http_client *kms;
    tee_state *tees;
    size_t n;
} sched;

static uint64_t interval_ms(const cf_attestsvc *a) { return a->interval_s * 1000u; }

static uint64_t rand_below(uint64_t n)
{
    uint64_t r = 0;

    if (n == 0 || cf_random(&r, sizeof(r)) != 0)
        return 0;
    return r % n;
}

/* interval +- 10% (uniform), so that TEEs registered together drift apart and
 * replicas' requests do not line up. */
static uint64_t jittered(const cf_attestsvc *a)
{
    uint64_t iv = interval_ms(a), spread = iv / 5;
    return iv - iv / 10 + rand_below(spread + 1);
}

/* Refreshes the TEE set from the registry: keeps the schedule of known TEEs,
 * adds new active ones (first due at a random point of the next interval),
 * drops those no longer listed as active. */
static void refresh(sched *s, uint64_t now)
{
    cf_attest_tee_list l = {0};
    tee_state *next;
    size_t m = 0;
    int rc = cf_attestsvc_registry_list(s->a, &l);

    if (rc != 0) {
        /* Keep the previous set: re-attesting a TEE the registry has since
         * dropped is harmless (the KMS decides), skipping all would not be. */
        cf_log(CF_LOG_WARN, "reattest.registry_unavailable", "reason", cf_err_detail(rc), NULL);
        return;
    }
    next = calloc(l.n > 0 ? l.n : 1, sizeof(*next));
    if (next == NULL) {
        cf_attest_tee_list_free(&l);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        const cf_attest_tee_entry *e = &l.v[i];
        tee_state *t = &next[m];
        if (strcmp(e->status, "active") != 0)
            continue;
        t->e = *e;
        t->due_ms = now + rand_below(interval_ms(s->a) + 1);
        for (size_t j = 0; j < s->n; j++) {
            if (strcmp(s->tees[j].e.id, e->id) == 0) {
                t->due_ms = s->tees[j].due_ms;
                t->unreachable_since = s->tees[j].unreachable_since;
                break;
            }
        }
        m++;
    }
    free(s->tees);
    s->tees = next;
    s->n = m;
    cf_attest_tee_list_free(&l);
}

static int kms_nonce(sched *s, uint8_t nonce[CF_BINDING_NONCE_LEN])
{
    cf_http_request rq = {.method = "POST", .path = "/v1/registry/nonce", .body = "{}", .body_len = 2};
    cf_http_response resp;
    int rc;

    memset(&resp, 0, sizeof(resp));
    rc = cf_http_client_do(s->kms, &rq, &resp);
    if (rc != 0)
        return cf_err_set(CF_E_UNAVAILABLE, "KMS nonce request failed: %s", cf_err_detail(rc));
    if (resp.status != 200 && resp.status != 201)
        rc = cf_err_set(CF_E_UNAVAILABLE, "KMS answered HTTP %ld to the nonce request", resp.status);
    else
        rc = cf_attest_kms_nonce_parse(resp.body.data, resp.body.len, nonce);
    cf_http_response_free(&resp);
    return rc;
}

/* Posts the evidence to the KMS. *ret_accepted: the KMS kept the TEE active.
 * kms_out gets a short description of its answer. */
static void kms_report(sched *s, const cf_attest_tee_entry *e, const uint8_t nonce[CF_BINDING_NONCE_LEN],
                       const cf_attest_evidence *ev, bool *ret_accepted, char *kms_out, size_t kms_size)
{
    char path[CF_ID_MAX_LEN + 64];
    cf_http_request rq = {.method = "POST"};
    cf_http_response resp;
    json_t *o = NULL, *err = NULL;
    const char *status = NULL, *why = NULL;
    cf_buf body;
    int rc;

    *ret_accepted = false;
    memset(&resp, 0, sizeof(resp));
    cf_buf_init(&body, CF_ATTESTSVC_TEE_MAX_RESPONSE);
    snprintf(path, sizeof(path), "/v1/registry/tees/%s/attestations", e->id);
    rc = cf_attest_kms_report_build(nonce, ev, &body);
    if (rc == 0) {
        rq.path = path;
        rq.body = body.data;
        rq.body_len = body.len;
        rc = cf_http_client_do(s->kms, &rq, &resp);
    }
    if (rc != 0) {
        snprintf(kms_out, kms_size, "not reported: %s", cf_err_detail(rc));
        goto out;
    }
    /* The answer is informative only; malformed or unknown shapes are shown as such. */
    if (cf_json_parse_object(resp.body.data, resp.body.len, CF_ATTESTSVC_KMS_MAX_RESPONSE, &o) == 0) {
        if (cf_json_get_str(o, "status", false, CF_ATTESTSVC_MAX_STATUS_LEN, &status) != 0)
            status = NULL;
        if (cf_json_get_str(o, "reason", false, CF_ATTESTSVC_MAX_REASON, &why) != 0)
            why = NULL;
        if (why == NULL && json_is_object(err = json_object_get(o, "error")) &&
            cf_json_get_str(err, "message", false, CF_ATTESTSVC_MAX_REASON, &why) != 0)
            why = NULL;
    }
    if (resp.status >= 200 && resp.status <= 299 && (status == NULL || strcmp(status, "active") == 0)) {
        *ret_accepted = true;
        snprintf(kms_out, kms_size, "accepted");
    } else if (resp.status >= 200 && resp.status <= 299) {
        snprintf(kms_out, kms_size, "%.32s%s%.400s", status, why ? ": " : "", why ? why : "");
    } else {
        snprintf(kms_out, kms_size, "refused (HTTP %ld)%s%.400s", resp.status, why ? ": " : "", why ? why : "");
    }
out:
    json_decref(o);
    cf_http_response_free(&resp);
    cf_buf_free(&body);
}

static void audit_ok(sched *s, const cf_attest_tee_entry *e, const char *id)
{
    cf_principal self;
    char resource[CF_ID_MAX_LEN + 8];
    int rc;

    memset(&self, 0, sizeof(self));
    snprintf(self.sub, sizeof(self.sub), "%s", CF_ATTESTSVC_SPIFFE);
    snprintf(self.tenant, sizeof(self.tenant), "%s", CF_PLATFORM_TENANT);
    snprintf(resource, sizeof(resource), "tee/%s", e->id);
    rc = cf_svc_audit(s->a->svc, NULL, &self, "tee.reattested", e->tenant[0] ? e->tenant : NULL, resource,
                      "success", json_pack("{s:s,s:s}", "deployment", e->deployment, "attestation_id", id));
    if (rc != 0)
        cf_log(CF_LOG_ERROR, "reattest.audit_failed", "tee_id", e->id, "reason", cf_err_detail(rc), NULL);
}

static void store_record(sched *s, cf_attest_record *rec, const char *failures)
{
    struct timespec ts;
    cf_store *st = NULL;
    int rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    rec->failures_json = failures;
    rc = cf_attest_history_new_id((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, rec->id);
    if (rc == 0)
        rc = cf_attestsvc_store_get(s->a, &st);
    if (rc == 0)
        rc = cf_attest_history_add(st, rec);
    cf_attestsvc_store_put(s->a, st);
    if (rc != 0)
        cf_log(CF_LOG_ERROR, "reattest.history_failed", "tee_id", rec->tee_id, "reason", cf_err_detail(rc), NULL);
}

static void reattest(sched *s, tee_state *t)
{
    cf_attestsvc *a = s->a;
    const cf_attest_tee_entry *e = &t->e;
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    cf_attestsvc_outcome o;
    cf_attest_record rec;
    char reason[CF_ATTESTSVC_MAX_REASON + 1];
    char *failures = NULL;
    bool accepted = false, ok;
    int rc;

    memset(&o, 0, sizeof(o));
    /* The KMS accepts re-attestation evidence only for a nonce it issued. */
    rc = kms_nonce(s, nonce);
    if (rc != 0) {
        cf_log(CF_LOG_WARN, "reattest.kms_unavailable", "tee_id", e->id, "reason", cf_err_detail(rc), NULL);
        return;
    }
    if (cf_attestsvc_attest(a, e, nonce, &o) != 0) {
        cf_log(CF_LOG_ERROR, "reattest.failed_locally", "tee_id", e->id, "reason", cf_err_detail(CF_E_NOMEM), NULL);
        return;
    }
    cf_attestsvc_record(a, &o, e, "reattest", &rec);
    if (!o.reached) {
        int64_t since;
        if (t->unreachable_since == 0)
            t->unreachable_since = o.at;
        since = o.at - t->unreachable_since;
        store_record(s, &rec, NULL);
        /* Longer than the interval, allowing for the -10% jitter of the retry. */
        if ((uint64_t)since * 10 >= a->interval_s * 9) {
            snprintf(reason, sizeof(reason), "unreachable for %llds: %.440s", (long long)since, o.error);
            cf_attestsvc_alert(a, e, reason);
        } else {
            cf_log(CF_LOG_WARN, "reattest.unreachable", "tee_id", e->id, "reason", o.error, NULL);
        }
        goto out;
    }
    t->unreachable_since = 0;
    ok = o.result->verified && o.registry.status != CF_CHECK_FAILED;
    /* Reported whatever our verdict: the KMS decides on its own evidence check. */
    kms_report(s, e, nonce, &o.tee->evidence, &accepted, rec.kms, sizeof(rec.kms));
    failures = cf_attest_failures_json(o.result, &o.registry);
    store_record(s, &rec, failures ? failures : "[]");
    if (!ok || !accepted) {
        if (!ok)
            snprintf(reason, sizeof(reason), "verification failed: %.300s; KMS: %.150s", rec.reason, rec.kms);
        else
            snprintf(reason, sizeof(reason), "KMS did not accept the re-attestation: %.400s", rec.kms);
        cf_attestsvc_alert(a, e, reason);
    } else {
        audit_ok(s, e, rec.id);
        cf_log(CF_LOG_DEBUG, "reattest.ok", "tee_id", e->id, NULL);
    }
out:
    free(failures);
    cf_attestsvc_outcome_free(&o);
}

static void prune(sched *s)
{
    cf_store *st = NULL;
    int64_t gone = 0;
    int rc = cf_attestsvc_store_get(s->a, &st);

    if (rc == 0)
        rc = cf_attest_history_prune(st, (int64_t)time(NULL) - (int64_t)s->a->retention_s, &gone);
    cf_attestsvc_store_put(s->a, st);
    if (rc != 0)
        cf_log(CF_LOG_WARN, "history.prune_failed", "reason", cf_err_detail(rc), NULL);
}

static bool is_stopping(cf_attestsvc *a)
{
    bool stop;

    pthread_mutex_lock(&a->sched_mu);
    stop = a->stopping;
    pthread_mutex_unlock(&a->sched_mu);
    return stop;
}

/* Waits until the monotonic time `until` or a stop request. true = stop. */
static bool wait_until(cf_attestsvc *a, uint64_t until)
{
    struct timespec ts;
    bool stop;

    ts.tv_sec = (time_t)(until / 1000);
    ts.tv_nsec = (long)(until % 1000) * 1000000L;
    pthread_mutex_lock(&a->sched_mu);
    while (!a->stopping) {
        if (pthread_cond_timedwait(&a->sched_cond, &a->sched_mu, &ts) == ETIMEDOUT)
            break;
    }
    stop = a->stopping;
    pthread_mutex_unlock(&a->sched_mu);
    return stop;
}

static void *sched_main(void *arg)
{
    cf_attestsvc *a = arg;
    sched s = {.a = a};
    uint64_t next_list = 0, next_prune = 0;
    bool was_leader = false;
    int rc;

    rc = cf_attest_leader_new(a->dsn, &s.leader);
    if (rc == 0)
        rc = cf_attestsvc_client(a, a->kms_url, "kms", 0, CF_ATTESTSVC_REGISTRY_MAX_BYTES, &s.kms);
    if (rc != 0) {
        cf_log(CF_LOG_ERROR, "reattest.disabled", "reason", cf_err_detail(rc), NULL);
        goto out;
    }
    cf_log(CF_LOG_INFO, "reattest.started", "election",
           cf_attest_leader_single_node(s.leader) ? "single node (sqlite)" : "postgresql advisory lock", NULL);
    for (;;) {
        uint64_t now = cf_attestsvc_mono_ms(), wake;
        bool leader = false;

        rc = cf_attest_leader_check(s.leader, &leader);
        if (rc != 0)
            cf_log(CF_LOG_WARN, "leader.check_failed", "reason", cf_err_detail(rc), NULL);
        if (!leader) {
            /* Another replica schedules; forget our schedule, so that taking
             * over starts from a fresh listing. */
            free(s.tees);
            s.tees = NULL;
            s.n = 0;
            next_list = 0;
            was_leader = false;
            if (wait_until(a, now + interval_ms(a)))
                break;
            continue;
        }
        if (!was_leader)
            next_list = 0;
        was_leader = true;
        if (now >= next_list) {
            refresh(&s, now);
            next_list = now + interval_ms(a);
        }
        for (size_t i = 0; i < s.n; i++) {
            if (is_stopping(a))
                break;
            if (s.tees[i].due_ms <= cf_attestsvc_mono_ms()) {
                reattest(&s, &s.tees[i]);
                s.tees[i].due_ms = cf_attestsvc_mono_ms() + jittered(a);
            }
        }
        if (now >= next_prune) {
            prune(&s);
            next_prune = now + interval_ms(a);
        }
        wake = next_list;
        for (size_t i = 0; i < s.n; i++)
            if (s.tees[i].due_ms < wake)
                wake = s.tees[i].due_ms;
        if (wait_until(a, wake))
            break;
    }
out:
    cf_http_client_free(s.kms);
    cf_attest_leader_free(s.leader);
    free(s.tees);
    return NULL;
}

int cf_attestsvc_scheduler_start(cf_attestsvc *a)
{
    pthread_condattr_t ca;
    int rc;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&a->sched_cond, &ca);
    pthread_condattr_destroy(&ca);
    CF_ENSURE(rc == 0, CF_E_NOMEM);
    pthread_mutex_init(&a->sched_mu, NULL);
    a->stopping = false;
    if (pthread_create(&a->sched, NULL, sched_main, a) != 0) {
        pthread_cond_destroy(&a->sched_cond);
        pthread_mutex_destroy(&a->sched_mu);
        return CF_E_NOMEM;
    }
    a->sched_started = true;
    return 0;
}

void cf_attestsvc_scheduler_stop(cf_attestsvc *a)
{
    if (!a->sched_started)
        return;
    pthread_mutex_lock(&a->sched_mu);
    a->stopping = true;
    pthread_cond_broadcast(&a->sched_cond);
    pthread_mutex_unlock(&a->sched_mu);
    pthread_join(a->sched, NULL);
    pthread_cond_destroy(&a->sched_cond);
    pthread_mutex_destroy(&a->sched_mu);
    a->sched_started = false;
}
