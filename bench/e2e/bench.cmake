# End-to-end benchmark of a running platform (issue 7), include()d at the end of
# CMakeLists.txt: "e2e" is not a module, so the bench/<module>/ glob does not see
# it. bench_platform drives `coffer up` through the client SDK; it is run by
# scripts/bench-e2e.sh (from scripts/bench.sh), never on its own by the glob
# loop, because it needs the platform's environment (STATE/client.env).
if(NOT TARGET coffer_sdk OR NOT TARGET coffer_http)
  return()
endif()

add_executable(bench_platform ${CMAKE_SOURCE_DIR}/bench/e2e/bench_platform.c)
# The static sdk module: the public API (include/coffer.h) plus the internal
# HTTP client for the plain round trip it is compared with.
target_link_libraries(bench_platform PRIVATE coffer_sdk coffer_http OpenSSL::Crypto Threads::Threads)
set_property(GLOBAL APPEND PROPERTY COFFER_BENCHES bench_platform)
if(TARGET benches)
  add_dependencies(benches bench_platform)
  # What scripts/bench-e2e.sh starts: `coffer up` and the programs it runs.
  foreach(_t coffer cofferd coffer-tee coffer-launch demo-bundle)
    if(TARGET ${_t})
      add_dependencies(benches ${_t})
    endif()
  endforeach()
endif()
