# The demo deployment bundle (docs/internals/tee.md "Demo bundle"), included
# from src/cmd/coffer-tee/program.cmake.
#
# Job executables are built by the C compiler directly, not as ordinary
# targets: they must not carry the project's sanitizer, fuzzing or debug
# flags (a static binary cannot carry ASan, and debug info would put build
# paths into what the bundle digest measures). They are static-pie: the
# sandbox's system call filter allows no loader (no open(), no executable
# mappings), and static-pie keeps ASLR. Stripped and built without paths, so
# the same toolchain gives the same bytes, hence the same build_hash.
set(COFFER_JOB_CFLAGS
  -std=c11 -O2 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes
  -Wmissing-prototypes -fstack-protector-strong -D_FORTIFY_SOURCE=2
  -fPIE -static-pie -s -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

# coffer_job_binary(OUT_VAR NAME SOURCE [DEPENDS...]): builds
# ${CMAKE_BINARY_DIR}/jobs/NAME from SOURCE and returns its path in OUT_VAR.
function(coffer_job_binary out_var name src)
  set(_out ${CMAKE_BINARY_DIR}/jobs/${name})
  add_custom_command(OUTPUT ${_out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/jobs
    COMMAND ${CMAKE_C_COMPILER} ${COFFER_JOB_CFLAGS} -o ${_out} ${src}
    DEPENDS ${src} ${ARGN}
    COMMENT "Building static job ${name}"
    VERBATIM)
  set(${out_var} ${_out} PARENT_SCOPE)
endfunction()

set(_demo_dir ${CMAKE_SOURCE_DIR}/demo)
set(COFFER_DEMO_BUNDLE ${CMAKE_BINARY_DIR}/demo-bundle)
set(_demo_jobs echo sha256 wordcount redact)
set(_demo_bins)
foreach(_j ${_demo_jobs})
  coffer_job_binary(_bin demo-${_j} ${_demo_dir}/jobs/${_j}.c ${_demo_dir}/jobs/job_io.h)
  list(APPEND _demo_bins ${_bin})
endforeach()

# The bundle is rebuilt from scratch (a stale file would change the digest) and
# signed with the published demo developer key (coffer-tee sign-bundle
# --demo-key); demo/developer.pub is its public key. The stamp lives outside
# the bundle, which holds exactly coffer.json, bin/* and coffer.sig.
set(_demo_cmds
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${COFFER_DEMO_BUNDLE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${COFFER_DEMO_BUNDLE}/bin
  COMMAND ${CMAKE_COMMAND} -E copy ${_demo_dir}/coffer.json ${COFFER_DEMO_BUNDLE}/coffer.json)
foreach(_j ${_demo_jobs})
  list(APPEND _demo_cmds
    COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_BINARY_DIR}/jobs/demo-${_j} ${COFFER_DEMO_BUNDLE}/bin/${_j})
endforeach()
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/demo-bundle.stamp
  ${_demo_cmds}
  COMMAND $<TARGET_FILE:coffer-tee> sign-bundle --bundle ${COFFER_DEMO_BUNDLE} --demo-key
  COMMAND ${CMAKE_COMMAND} -E touch ${CMAKE_BINARY_DIR}/demo-bundle.stamp
  DEPENDS ${_demo_bins} ${_demo_dir}/coffer.json coffer-tee
  COMMENT "Assembling and signing the demo bundle in ${COFFER_DEMO_BUNDLE}"
  VERBATIM)
add_custom_target(demo-bundle ALL DEPENDS ${CMAKE_BINARY_DIR}/demo-bundle.stamp)
