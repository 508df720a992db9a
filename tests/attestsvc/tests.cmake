# Extra registrations for tests/attestsvc (docs/internals/attestation-service.md "Tests").
#
# fake_platform.c: fake KMS (mTLS) and fake TEE runtimes with real simulated
# evidence, shared by the end-to-end test (in process) and by attestsvc_fake,
# the helper program that tests/cli/test_attestation_cli.sh runs.
add_library(attestsvc_fakeplat STATIC ${CMAKE_SOURCE_DIR}/tests/attestsvc/fake_platform.c)
target_link_libraries(attestsvc_fakeplat PUBLIC coffer_attestsvc coffer_testlib)
add_executable(attestsvc_fake ${CMAKE_SOURCE_DIR}/tests/attestsvc/attestsvc_fake.c)
target_link_libraries(attestsvc_fake PRIVATE attestsvc_fakeplat)

if(TARGET test_attestsvc_e2e AND TARGET cofferd)
  target_link_libraries(test_attestsvc_e2e PRIVATE attestsvc_fakeplat)
  add_dependencies(test_attestsvc_e2e cofferd)
  target_compile_definitions(test_attestsvc_e2e PRIVATE COFFERD_BIN="$<TARGET_FILE:cofferd>")
  set_tests_properties(attestsvc/test_attestsvc_e2e PROPERTIES TIMEOUT 180)
endif()
