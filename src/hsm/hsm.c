/*
 * PKCS#11 (v2.40) client for the KMS master key. See hsm.h for the model.
 *
 * The header comes from p11-kit (standard PKCS#11 names); the module is loaded
 * with dlopen so that any vendor's HSM library can be configured by path.
 */
#include "hsm/hsm.h"

#include <dlfcn.h>
#include <errno.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"

#define GCM_IV_LEN 12
#define GCM_TAG_LEN 16
#define TOKEN_LABEL_LEN 32 /* CK_TOKEN_INFO.label: 32 bytes, blank padded */
#define MAX_SLOTS 256
#define MAX_WRAP_INPUT (1u << 20)

struct cf_hsm {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE sess;
    CK_OBJECT_HANDLE master;
    pthread_mutex_t mu;
};

static atomic_int hsm_open_in_process;

static const char *ckr_str(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT: return "incorrect PIN";
    case CKR_PIN_LOCKED: return "token is locked (too many wrong PINs)";
    case CKR_PIN_LEN_RANGE: return "PIN length out of range";
    case CKR_TOKEN_NOT_PRESENT: return "token not present";
    case CKR_DEVICE_ERROR: return "device error";
    case CKR_DEVICE_REMOVED: return "device removed";
    case CKR_MECHANISM_INVALID: return "mechanism not supported by this HSM";
    case CKR_KEY_HANDLE_INVALID: return "invalid key handle";
    case CKR_SESSION_HANDLE_INVALID: return "session invalid";
    case CKR_USER_NOT_LOGGED_IN: return "not logged in";
    case CKR_CRYPTOKI_ALREADY_INITIALIZED: return "module already initialised in this process";
    case CKR_ARGUMENTS_BAD: return "bad arguments";
    default: return "PKCS#11 error";
    }
}

static int hsm_fail(const char *what, CK_RV rv)
{
    return cf_err_set(CF_E_HSM, "HSM %s failed: %s (CKR 0x%lx)", what, ckr_str(rv), (unsigned long)rv);
}

static void pad_label(const char *label, CK_UTF8CHAR out[TOKEN_LABEL_LEN])
{
    size_t n = strnlen(label, TOKEN_LABEL_LEN);

    memset(out, ' ', TOKEN_LABEL_LEN);
    memcpy(out, label, n);
}

static int write_softhsm_conf(const char *dir)
{
    char tokdir[4096], conf[4096], absdir[4096];
    FILE *f;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return cf_err_set(CF_E_IO, "cannot create HSM directory %s: %s", dir, strerror(errno));
    if (realpath(dir, absdir) == NULL)
        return cf_err_set(CF_E_IO, "cannot resolve HSM directory %s: %s", dir, strerror(errno));
    CF_GUARD(cf_fmt(tokdir, sizeof(tokdir), "%s/tokens", absdir));
    CF_GUARD(cf_fmt(conf, sizeof(conf), "%s/softhsm2.conf", absdir));
    if (mkdir(tokdir, 0700) != 0 && errno != EEXIST)
        return cf_err_set(CF_E_IO, "cannot create token directory %s: %s", tokdir, strerror(errno));
    f = fopen(conf, "w");
    if (f == NULL)
        return cf_err_set(CF_E_IO, "cannot write %s: %s", conf, strerror(errno));
    fprintf(f,
            "# Written by Coffer: this KMS's private SoftHSM2 configuration.\n"
            "directories.tokendir = %s\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n",
            tokdir);
    if (fclose(f) != 0)
        return cf_err_set(CF_E_IO, "cannot write %s", conf);
    /* SoftHSM2 reads SOFTHSM2_CONF in C_Initialize. */
    if (setenv("SOFTHSM2_CONF", conf, 1) != 0)
        return CF_E_NOMEM;
    return 0;
}

/* Finds the slot whose token has `label` (initialised) or, if want_uninit, the
 * first slot with an uninitialised token. 1 = found, 0 = not found. */
static int find_slot(CK_FUNCTION_LIST_PTR f, const char *label, int want_uninit, CK_SLOT_ID *ret)
{
    CK_SLOT_ID slots[MAX_SLOTS];
    CK_ULONG n = MAX_SLOTS;
    CK_UTF8CHAR want[TOKEN_LABEL_LEN];
    CK_RV rv;

    pad_label(label, want);
    rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return hsm_fail("slot listing", rv);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        int inited = (ti.flags & CKF_TOKEN_INITIALIZED) != 0;
        if (want_uninit ? !inited : (inited && memcmp(ti.label, want, TOKEN_LABEL_LEN) == 0)) {
            *ret = slots[i];
            return 1;
        }
    }
    return 0;
}

static int init_token(CK_FUNCTION_LIST_PTR f, const cf_hsm_opts *o, const char *label)
{
    CK_SLOT_ID slot;
    CK_UTF8CHAR lab[TOKEN_LABEL_LEN];
    CK_SESSION_HANDLE s;
    CK_RV rv;
    int r;

    if (o->so_pin == NULL || o->so_pin[0] == '\0')
        return cf_err_set(CF_E_CONFIG, "HSM token '%s' does not exist and no SO PIN was given to create it",
                          label);
    r = find_slot(f, label, 1, &slot);
    CF_GUARD(r);
    if (r == 0)
        return cf_err_set(CF_E_HSM, "HSM has no free slot to create token '%s'", label);
    pad_label(label, lab);
    rv = f->C_InitToken(slot, (CK_UTF8CHAR_PTR)(uintptr_t)o->so_pin, strlen(o->so_pin), lab);
    if (rv != CKR_OK)
        return hsm_fail("token initialisation", rv);
    /* SoftHSM2 moves an initialised token to a new slot id: look it up again. */
    r = find_slot(f, label, 0, &slot);
    CF_GUARD(r);
    if (r == 0)
        return cf_err_set(CF_E_HSM, "HSM token '%s' vanished after initialisation", label);
    rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK)
        return hsm_fail("session open", rv);
    rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)(uintptr_t)o->so_pin, strlen(o->so_pin));
    if (rv == CKR_OK) {
        rv = f->C_InitPIN(s, (CK_UTF8CHAR_PTR)(uintptr_t)o->pin, strlen(o->pin));
        (void)f->C_Logout(s);
    }
    (void)f->C_CloseSession(s);
    if (rv != CKR_OK)
        return hsm_fail("user PIN initialisation", rv);
    cf_log(CF_LOG_INFO, "hsm.token_created", "label", label, NULL);
    return 0;
}

static int find_master(cf_hsm *h, const char *label, CK_OBJECT_HANDLE *ret)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_OBJECT_HANDLE objs[2];
    CK_ULONG n = 0;
    CK_RV rv;

    rv = h->f->C_FindObjectsInit(h->sess, tmpl, CF_ARRAY_LEN(tmpl));
    if (rv != CKR_OK)
        return hsm_fail("object search", rv);
    rv = h->f->C_FindObjects(h->sess, objs, 2, &n);
    (void)h->f->C_FindObjectsFinal(h->sess);
    if (rv != CKR_OK)
        return hsm_fail("object search", rv);
    if (n > 1)
        return cf_err_set(CF_E_HSM, "HSM holds more than one key labelled '%s'", label);
    if (n == 0)
        return 0;
    *ret = objs[0];
    return 1;
}

static int create_master(cf_hsm *h, const char *label, CK_OBJECT_HANDLE *ret)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len = 32;
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_RV rv = h->f->C_GenerateKey(h->sess, &mech, tmpl, CF_ARRAY_LEN(tmpl), ret);

    if (rv != CKR_OK)
        return hsm_fail("master key generation", rv);
    cf_log(CF_LOG_INFO, "hsm.master_key_created", "label", label, NULL);
    return 0;
}

int cf_hsm_master_attrs(cf_hsm *h, bool *ret_sensitive, bool *ret_extractable)
{
    CK_BBOOL sens = CK_FALSE, ext = CK_TRUE;
    CK_ATTRIBUTE a[] = {{CKA_SENSITIVE, &sens, sizeof(sens)}, {CKA_EXTRACTABLE, &ext, sizeof(ext)}};
    CK_RV rv;

    pthread_mutex_lock(&h->mu);
    rv = h->f->C_GetAttributeValue(h->sess, h->master, a, 2);
    pthread_mutex_unlock(&h->mu);
    if (rv != CKR_OK)
        return hsm_fail("attribute read", rv);
    *ret_sensitive = sens == CK_TRUE;
    *ret_extractable = ext == CK_TRUE;
    return 0;
}

int cf_hsm_master_value_refused(cf_hsm *h)
{
    uint8_t val[64];
    CK_ATTRIBUTE a = {CKA_VALUE, val, sizeof(val)};
    CK_RV rv;

    pthread_mutex_lock(&h->mu);
    rv = h->f->C_GetAttributeValue(h->sess, h->master, &a, 1);
    pthread_mutex_unlock(&h->mu);
    cf_wipe(val, sizeof(val));
    return rv == CKR_OK ? CF_E_INTERNAL : 0;
}

void cf_hsm_close(cf_hsm *h)
{
    if (h == NULL)
        return;
    if (h->f != NULL) {
        if (h->sess != CK_INVALID_HANDLE) {
            (void)h->f->C_Logout(h->sess);
            (void)h->f->C_CloseSession(h->sess);
        }
        (void)h->f->C_Finalize(NULL);
    }
    if (h->dl != NULL)
        dlclose(h->dl);
    pthread_mutex_destroy(&h->mu);
    free(h);
    atomic_store(&hsm_open_in_process, 0);
}

int cf_hsm_open(const cf_hsm_opts *o, cf_hsm **ret)
{
    const char *module = o->module ? o->module : CF_HSM_DEFAULT_MODULE;
    const char *label = o->token_label ? o->token_label : "coffer";
    const char *mlabel = o->master_label ? o->master_label : "coffer-master-key";
    CK_C_GetFunctionList getfl;
    CK_C_INITIALIZE_ARGS iargs;
    cf_hsm *h = NULL;
    CK_RV rv;
    int rc, found;
    bool sens = false, ext = true;

    if (o->pin == NULL || o->pin[0] == '\0')
        return cf_err_set(CF_E_CONFIG, "no HSM PIN configured");
    if (strlen(label) > TOKEN_LABEL_LEN)
        return cf_err_set(CF_E_CONFIG, "HSM token label longer than 32 bytes");
    if (atomic_exchange(&hsm_open_in_process, 1) != 0)
        return cf_err_set(CF_E_CONFLICT, "an HSM session is already open in this process");

    h = calloc(1, sizeof(*h));
    CF_ENSURE_OUT(h != NULL, CF_E_NOMEM);
    pthread_mutex_init(&h->mu, NULL);
    h->sess = CK_INVALID_HANDLE;
    if (o->softhsm_dir != NULL)
        CF_GUARD_OUT(write_softhsm_conf(o->softhsm_dir));

    h->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (h->dl == NULL) {
        rc = cf_err_set(CF_E_HSM, "cannot load PKCS#11 module %s: %s", module, dlerror());
        goto out;
    }
    *(void **)(&getfl) = dlsym(h->dl, "C_GetFunctionList");
    if (getfl == NULL || getfl(&h->f) != CKR_OK || h->f == NULL) {
        h->f = NULL;
        rc = cf_err_set(CF_E_HSM, "%s is not a PKCS#11 module (no C_GetFunctionList)", module);
        goto out;
    }
    memset(&iargs, 0, sizeof(iargs));
    iargs.flags = CKF_OS_LOCKING_OK;
    rv = h->f->C_Initialize(&iargs);
    if (rv != CKR_OK) {
        h->f = NULL; /* not initialised: do not finalize */
        rc = hsm_fail("initialisation", rv);
        goto out;
    }

    found = find_slot(h->f, label, 0, &h->slot);
    CF_GUARD_OUT(found);
    if (found == 0) {
        if (o->softhsm_dir == NULL) {
            rc = cf_err_set(CF_E_HSM, "HSM token '%s' not found", label);
            goto out;
        }
        CF_GUARD_OUT(init_token(h->f, o, label));
        found = find_slot(h->f, label, 0, &h->slot);
        CF_GUARD_OUT(found);
        CF_ENSURE_OUT(found == 1, CF_E_HSM);
    }
    rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h->sess);
    if (rv != CKR_OK) {
        h->sess = CK_INVALID_HANDLE;
        rc = hsm_fail("session open", rv);
        goto out;
    }
    rv = h->f->C_Login(h->sess, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)o->pin, strlen(o->pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        rc = hsm_fail("login", rv);
        goto out;
    }
    found = find_master(h, mlabel, &h->master);
    CF_GUARD_OUT(found);
    if (found == 0) {
        if (!o->create_master) {
            rc = cf_err_set(CF_E_HSM, "master key '%s' not found on token '%s'", mlabel, label);
            goto out;
        }
        CF_GUARD_OUT(create_master(h, mlabel, &h->master));
    }
    /* Fail closed: a master key that could leave the HSM is not a master key. */
    CF_GUARD_OUT(cf_hsm_master_attrs(h, &sens, &ext));
    if (!sens || ext) {
        rc = cf_err_set(CF_E_HSM, "master key '%s' is extractable or not sensitive; refusing to use it",
                        mlabel);
        goto out;
    }
    *ret = h;
    h = NULL;
    rc = 0;
out:
    if (h != NULL)
        cf_hsm_close(h); /* also clears hsm_open_in_process */
    else if (rc != 0)
        atomic_store(&hsm_open_in_process, 0);
    return rc;
}

static void gcm_mech(CK_GCM_PARAMS *p, CK_MECHANISM *m, uint8_t *iv, const uint8_t *aad, size_t aad_len)
{
    memset(p, 0, sizeof(*p));
    p->pIv = iv;
    p->ulIvLen = GCM_IV_LEN;
    p->ulIvBits = GCM_IV_LEN * 8;
    p->pAAD = (CK_BYTE_PTR)(uintptr_t)aad;
    p->ulAADLen = aad_len;
    p->ulTagBits = GCM_TAG_LEN * 8;
    m->mechanism = CKM_AES_GCM;
    m->pParameter = p;
    m->ulParameterLen = sizeof(*p);
}

int cf_hsm_wrap(cf_hsm *h, const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                cf_buf *out)
{
    uint8_t iv[GCM_IV_LEN], *dst;
    CK_GCM_PARAMS gp;
    CK_MECHANISM mech;
    CK_ULONG clen = pt_len + GCM_TAG_LEN;
    size_t before = out->len;
    CK_RV rv;
    int rc;

    CF_ENSURE(pt_len > 0 && pt_len <= MAX_WRAP_INPUT, CF_E_INVAL);
    /* Random 96-bit IVs: the master key wraps far fewer than 2^32 values. */
    CF_GUARD(cf_random(iv, sizeof(iv)));
    CF_GUARD(cf_buf_put(out, iv, sizeof(iv)));
    rc = cf_buf_put_space(out, clen, &dst);
    if (rc < 0) {
        out->len = before;
        return rc;
    }
    gcm_mech(&gp, &mech, iv, aad, aad_len);
    pthread_mutex_lock(&h->mu);
    rv = h->f->C_EncryptInit(h->sess, &mech, h->master);
    if (rv == CKR_OK)
        rv = h->f->C_Encrypt(h->sess, (CK_BYTE_PTR)(uintptr_t)pt, pt_len, dst, &clen);
    pthread_mutex_unlock(&h->mu);
    if (rv != CKR_OK || clen != pt_len + GCM_TAG_LEN) {
        out->len = before;
        return rv != CKR_OK ? hsm_fail("wrap", rv) : cf_err_set(CF_E_HSM, "HSM wrap returned bad length");
    }
    return 0;
}

int cf_hsm_unwrap(cf_hsm *h, const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
                  cf_buf *out)
{
    uint8_t iv[GCM_IV_LEN], *dst;
    CK_GCM_PARAMS gp;
    CK_MECHANISM mech;
    CK_ULONG plen;
    size_t before = out->len;
    CK_RV rv;
    int rc;

    if (in_len <= GCM_IV_LEN + GCM_TAG_LEN || in_len > MAX_WRAP_INPUT + CF_HSM_WRAP_OVERHEAD)
        return cf_err_set(CF_E_DECRYPT, "wrapped value has an invalid length");
    memcpy(iv, in, GCM_IV_LEN);
    /* Room for the whole ciphertext: some modules want ct+tag bytes of output space. */
    plen = in_len - GCM_IV_LEN;
    rc = cf_buf_put_space(out, plen, &dst);
    if (rc < 0)
        return rc;
    gcm_mech(&gp, &mech, iv, aad, aad_len);
    pthread_mutex_lock(&h->mu);
    rv = h->f->C_DecryptInit(h->sess, &mech, h->master);
    if (rv == CKR_OK)
        rv = h->f->C_Decrypt(h->sess, (CK_BYTE_PTR)(uintptr_t)(in + GCM_IV_LEN), in_len - GCM_IV_LEN,
                             dst, &plen);
    pthread_mutex_unlock(&h->mu);
    if (rv != CKR_OK || plen != in_len - GCM_IV_LEN - GCM_TAG_LEN) {
        cf_wipe(dst, in_len - GCM_IV_LEN);
        out->len = before;
        if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
            rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED)
            return cf_err_set(CF_E_DECRYPT, "wrapped value failed authentication (wrong key, AAD or data)");
        return rv != CKR_OK ? hsm_fail("unwrap", rv) : cf_err_set(CF_E_HSM, "HSM unwrap returned bad length");
    }
    /* Drop the tag-sized slack that was reserved but not written. */
    cf_wipe(dst + plen, GCM_TAG_LEN);
    out->len = before + plen;
    return 0;
}

int cf_hsm_random(cf_hsm *h, uint8_t *out, size_t n)
{
    CK_RV rv;

    CF_ENSURE(n > 0 && n <= 4096, CF_E_INVAL);
    pthread_mutex_lock(&h->mu);
    rv = h->f->C_GenerateRandom(h->sess, out, n);
    pthread_mutex_unlock(&h->mu);
    return rv == CKR_OK ? 0 : hsm_fail("random generation", rv);
}
