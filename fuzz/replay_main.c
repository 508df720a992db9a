/*
 * Corpus replay driver: runs LLVMFuzzerTestOneInput over every file in the
 * directories (or files) given on the command line, so that each fuzz corpus is
 * an ordinary test in `make check` (and under ASan + UBSan in the sanitizer
 * build). The libFuzzer build (COFFER_FUZZ=ON, `make fuzz`) links libFuzzer's
 * own main instead.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *d;
    long n;

    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    d = malloc(n > 0 ? (size_t)n : 1);
    if (d == NULL || (n > 0 && fread(d, 1, (size_t)n, f) != (size_t)n)) {
        free(d);
        fclose(f);
        return -1;
    }
    fclose(f);
    (void)LLVMFuzzerTestOneInput(d, (size_t)n);
    free(d);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    int files = 0, errors = 0, missing = 0;

    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "missing corpus %s\n", argv[i]);
            missing++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += run_file(argv[i]) != 0;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        char **names = NULL;
        size_t n = 0;
        if (d == NULL) {
            missing++;
            continue;
        }
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char **nn = realloc(names, (n + 1) * sizeof(*names));
            if (nn == NULL)
                abort();
            names = nn;
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(*names), cmp);
        for (size_t k = 0; k < n; k++) {
            char path[4096];
            if ((size_t)snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]) < sizeof(path)) {
                errors += run_file(path) != 0;
                files++;
            }
            free(names[k]);
        }
        free(names);
    }
    /* A corpus with no input proves nothing: fail so that it gets seeded. */
    printf("replayed %d inputs, %d unreadable, %d missing corpora\n", files, errors, missing);
    printf("%d passed, %d failed\n", files - errors, errors + missing + (files == 0));
    return errors == 0 && missing == 0 && files > 0 ? 0 : 1;
}
