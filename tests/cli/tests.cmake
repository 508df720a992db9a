# CLI end-to-end tests (shell scripts driving the built binaries).
add_test(NAME cli/evidence COMMAND ${CMAKE_SOURCE_DIR}/tests/cli/test_evidence_cli.sh
         $<TARGET_FILE:coffer> ${COFFER_TESTDATA})
set_tests_properties(cli/evidence PROPERTIES TIMEOUT 300)

if(TARGET coffer-launch AND TARGET sim_helper)
  add_test(NAME cli/simulator COMMAND ${CMAKE_SOURCE_DIR}/tests/cli/test_simulator_cli.sh
           $<TARGET_FILE:coffer> $<TARGET_FILE:coffer-launch> $<TARGET_FILE:sim_helper>)
  set_tests_properties(cli/simulator PROPERTIES TIMEOUT 300)
endif()

# coffer attestation verify against a running cofferd attest with a fake KMS and fake
# TEEs (tests/attestsvc/attestsvc_fake.c).
if(TARGET cofferd AND TARGET attestsvc_fake)
  add_test(NAME cli/attestation COMMAND ${CMAKE_SOURCE_DIR}/tests/cli/test_attestation_cli.sh
           $<TARGET_FILE:coffer> $<TARGET_FILE:cofferd> $<TARGET_FILE:attestsvc_fake>)
  set_tests_properties(cli/attestation PROPERTIES TIMEOUT 180)
endif()
