# Extra wiring for tests/audit (include()d from the top CMakeLists.txt). The service
# tests start `cofferd audit` as a separate process: they need the binary and its path.
foreach(_t test_auditsvc_service test_auditsvc_durability)
  if(TARGET ${_t} AND TARGET cofferd)
    add_dependencies(${_t} cofferd)
    target_compile_definitions(${_t} PRIVATE COFFERD_BIN="$<TARGET_FILE:cofferd>")
    set_tests_properties(audit/${_t} PROPERTIES TIMEOUT 180)
  endif()
endforeach()

# A helper for tests/cli/test_audit_cli.sh: PKI, tokens, event batches, store edits and a
# stand-in gateway (token exchange + /v1/audit proxy).
if(TARGET coffer_audit AND EXISTS ${CMAKE_SOURCE_DIR}/tests/audit/auditsvc_fixture.c)
  add_executable(auditsvc_fixture ${CMAKE_SOURCE_DIR}/tests/audit/auditsvc_fixture.c)
  target_link_libraries(auditsvc_fixture PRIVATE coffer_audit coffer_testlib)
endif()
