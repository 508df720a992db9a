# Extra gateway test wiring (include()d from the top CMakeLists.txt).
# test_gateway starts `cofferd gateway` as a separate process (DESIGN.md §1)
# against fake upstreams that run inside the test program.
if(TARGET test_gateway AND TARGET cofferd)
  add_dependencies(test_gateway cofferd)
  target_compile_definitions(test_gateway PRIVATE COFFERD_BIN="$<TARGET_FILE:cofferd>")
  set_tests_properties(gateway/test_gateway PROPERTIES TIMEOUT 120)
  # The events the gateway spools must be valid audit events (the forwarder
  # refuses anything else): checked with the audit log's own parser.
  if(TARGET coffer_auditlog)
    target_link_libraries(test_gateway PRIVATE coffer_auditlog)
    target_compile_definitions(test_gateway PRIVATE HAVE_AUDITLOG=1)
  endif()
endif()
