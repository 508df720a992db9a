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

# Operator / user subcommands (tenant, principal, apikey, clientkey, key, tee,
# join-token, deployment create/list) against real `cofferd iam`, `cofferd
# gateway` (HTTPS, certificate from pki_helper), and `cofferd kms` / `cofferd
# attest` when they are built. pki_helper makes the CA, service certificates and
# a developer key: the `coffer` CLI itself cannot make certificates.
if(TARGET coffer_crypto)
  add_executable(pki_helper ${CMAKE_SOURCE_DIR}/tests/cli/pki_helper.c)
  target_link_libraries(pki_helper PRIVATE coffer_crypto)
endif()
if(TARGET cofferd AND TARGET pki_helper AND TARGET coffer-tee AND TARGET demo-bundle)
  add_test(NAME cli/admin COMMAND ${CMAKE_SOURCE_DIR}/tests/cli/test_admin_cli.sh
           $<TARGET_FILE:coffer> $<TARGET_FILE:cofferd> $<TARGET_FILE:coffer-tee>
           $<TARGET_FILE:pki_helper> ${CMAKE_BINARY_DIR}/demo-bundle)
  set_tests_properties(cli/admin PROPERTIES TIMEOUT 180)
endif()

# coffer audit verify|tail against a running cofferd audit; the store is edited under the
# stopped service (tests/audit/auditsvc_fixture.c: PKI, tokens, events, SQL, stand-in gateway).
if(TARGET cofferd AND TARGET auditsvc_fixture)
  add_test(NAME cli/audit COMMAND ${CMAKE_SOURCE_DIR}/tests/cli/test_audit_cli.sh
           $<TARGET_FILE:coffer> $<TARGET_FILE:cofferd> $<TARGET_FILE:auditsvc_fixture>)
  set_tests_properties(cli/audit PROPERTIES TIMEOUT 180)
endif()
