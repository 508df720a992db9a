/* Compiler helpers shared by every module. Depends on nothing. */
#ifndef COFFER_BASE_COMPILER_H
#define COFFER_BASE_COMPILER_H

#define CF_WUR __attribute__((warn_unused_result))
#define CF_UNUSED __attribute__((unused))
#define CF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CF_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
