# The whole platform under `coffer up`, driven through the CLI and raw HTTP (attack scenarios).
if(TARGET coffer AND TARGET cofferd AND TARGET coffer-tee AND TARGET coffer-launch AND TARGET demo-bundle)
  add_test(NAME e2e/platform COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/test_platform.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(e2e/platform PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
endif()
