# Extra registrations for tests/sdk (include()d from the top CMakeLists.txt).
#
# sdk/example_build builds examples/ with pkg-config against the build tree's
# coffer.pc (shared and static) and checks the exported symbols; it is the
# fixture of test_sdk_cli, which runs those programs and `coffer request`
# against the fake platform.
if(TARGET coffer_shared AND TARGET coffer_static)
  add_test(NAME sdk/example_build
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/sdk/test_example_build.sh
                   ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR} ${CMAKE_C_COMPILER})
  set_tests_properties(sdk/example_build PROPERTIES FIXTURES_SETUP sdk_example TIMEOUT 300)
endif()

if(TARGET test_sdk_cli AND TARGET coffer)
  add_dependencies(test_sdk_cli coffer coffer_shared coffer_static)
  target_compile_definitions(test_sdk_cli PRIVATE
    COFFER_BIN="$<TARGET_FILE:coffer>"
    COFFER_EXAMPLE_DIR="${CMAKE_BINARY_DIR}/sdk/example")
  set_tests_properties(sdk/test_sdk_cli PROPERTIES FIXTURES_REQUIRED sdk_example)
endif()
