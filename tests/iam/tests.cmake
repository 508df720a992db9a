# Extra wiring for tests/iam (include()d from the top CMakeLists.txt).
# test_iam_service starts `cofferd iam` as a separate process: it needs the
# binary built and its path.
if(TARGET test_iam_service AND TARGET cofferd)
  add_dependencies(test_iam_service cofferd)
  target_compile_definitions(test_iam_service PRIVATE COFFERD_BIN="$<TARGET_FILE:cofferd>")
  set_tests_properties(iam/test_iam_service PROPERTIES TIMEOUT 120)
endif()
