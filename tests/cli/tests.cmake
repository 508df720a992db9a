# CLI end-to-end tests (shell scripts driving the built binaries).
add_test(NAME cli/evidence COMMAND ${CMAKE_SOURCE_DIR}/tests/cli/test_evidence_cli.sh
         $<TARGET_FILE:coffer> ${COFFER_TESTDATA})
set_tests_properties(cli/evidence PROPERTIES TIMEOUT 300)

if(TARGET coffer-launch AND TARGET sim_helper)
  add_test(NAME cli/simulator COMMAND ${CMAKE_SOURCE_DIR}/tests/cli/test_simulator_cli.sh
           $<TARGET_FILE:coffer> $<TARGET_FILE:coffer-launch> $<TARGET_FILE:sim_helper>)
  set_tests_properties(cli/simulator PROPERTIES TIMEOUT 300)
endif()
