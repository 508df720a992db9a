#!/bin/sh
# Builds examples/ with pkg-config against the build tree's coffer.pc, dynamically
# and statically, and checks what libcoffer.so exports. The programs are then run
# against the fake platform by test_sdk_cli (this test is its fixture).
#
#   test_example_build.sh BUILD_DIR SOURCE_DIR CC
set -eu
build=$1
src=$2
cc=$3
out=$build/sdk/example
fail() { echo "FAIL: $*" >&2; exit 1; }

PKG_CONFIG_PATH=$build/sdk
export PKG_CONFIG_PATH
pkg-config --exists coffer || fail "pkg-config does not find coffer in $build/sdk"
[ "$(pkg-config --modversion coffer)" = "$(sed -n 's/^Version: //p' "$build/sdk/coffer.pc")" ] ||
    fail "version mismatch"
pkg-config --cflags coffer | grep -q -- "-I$src/include" || fail "Cflags do not name the headers"
pkg-config --libs coffer | grep -q -- "-lcoffer" || fail "Libs do not name -lcoffer"

# Only the public API leaves the shared library.
extra=$(nm -D --defined-only "$build/sdk/libcoffer.so" | awk '{print $3}' |
        sed 's/@.*//' | grep -v -e '^coffer_' -e '^COFFER_0$' || true)
[ -z "$extra" ] || fail "libcoffer.so exports non-API symbols: $(echo "$extra" | head -5)"
nm -D --defined-only "$build/sdk/libcoffer.so" | grep -q ' coffer_request@@COFFER_0$' ||
    fail "coffer_request is not exported"
# The public header stands alone (no internal header leaks into it), also for C++.
printf '#include <coffer.h>\nint main(void) { return coffer_version() == 0; }\n' > "$build/sdk/hdr.c"
"$cc" -std=c99 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags coffer) -fsyntax-only \
    "$build/sdk/hdr.c" || fail "coffer.h does not compile on its own"
if command -v c++ >/dev/null 2>&1; then
    c++ -x c++ -Wall -Wextra -Werror $(pkg-config --cflags coffer) -fsyntax-only "$build/sdk/hdr.c" ||
        fail "coffer.h does not compile as C++"
fi

rm -rf "$out"
mkdir -p "$out"
make -s -C "$src/examples" OUT="$out" CC="$cc" all static
[ -x "$out/coffer-example" ] && [ -x "$out/coffer-example-static" ] || fail "no programs built"
ldd "$out/coffer-example" | grep -q 'libcoffer\.so\.0' || fail "not linked with libcoffer.so"
! ldd "$out/coffer-example-static" | grep -q 'libcoffer' || fail "static build uses libcoffer.so"
# Nothing was written into the source tree.
[ ! -e "$src/examples/coffer-example" ] || fail "build output in the source tree"
echo "examples built in $out"
