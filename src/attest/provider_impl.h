/*
 * Internal to the provider back ends (provider*.c): the provider object and
 * the per-back-end entry points. Not for use outside src/attest/provider*.c.
 */
#ifndef COFFER_ATTEST_PROVIDER_IMPL_H
#define COFFER_ATTEST_PROVIDER_IMPL_H

#include <pthread.h>

#include "attest/provider.h"

struct cf_provider {
    cf_provider_kind kind;
    pthread_mutex_t lock; /* serialises get_report */
    int fd;               /* launcher socket or /dev/sev-guest; -1 for configfs-tsm */
    char *tsm_root;       /* configfs-tsm report directory (malloc'd) */
    cf_tsm_hook hook;
    void *hook_arg;
};

/* Allocates a provider of a kind with fd (ownership passes on success). */
int cf_provider__new(cf_provider_kind kind, int fd, cf_provider **ret) CF_WUR;

/* Back ends: called with p->lock held; write *ret only on success. */
int cf_provider__launcher_get(cf_provider *p, const uint8_t report_data[64],
                              cf_provider_evidence *ret) CF_WUR;
int cf_provider__tsm_get(cf_provider *p, const uint8_t report_data[64],
                         cf_provider_evidence *ret) CF_WUR;
int cf_provider__sev_guest_get(cf_provider *p, const uint8_t report_data[64],
                               cf_provider_evidence *ret) CF_WUR;

/* Shared tail of the hardware back ends: checks the report (length, echoed
 * report_data), and when a certificate table is given picks the VCEK or VLEK
 * entry according to the report's KEY_INFO. Fills *ret on success. */
int cf_provider__finish(const uint8_t report_data[64], const uint8_t *report, size_t report_len,
                        const uint8_t *cert_table, size_t table_len,
                        cf_provider_evidence *ret) CF_WUR;
/* Checks that report (CF_SNP_REPORT_LEN bytes) carries report_data at 0x050. */
int cf_provider__check_echo(const uint8_t *report, const uint8_t report_data[64]) CF_WUR;

#endif
