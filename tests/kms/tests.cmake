# Extra wiring for tests/kms (owner: the KMS service, docs/internals/kms.md).
# test_kms_process starts `cofferd kms` as a separate process: it needs the
# binary built and its path.
if(TARGET test_kms_process AND TARGET cofferd)
  add_dependencies(test_kms_process cofferd)
  target_compile_definitions(test_kms_process PRIVATE COFFERD_BIN="$<TARGET_FILE:cofferd>")
endif()
