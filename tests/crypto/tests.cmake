# Extra crypto test registrations (include()d from the top CMakeLists.txt).

# RFC 9180 Appendix A vectors: a program, not a test_* file, because it takes the
# vector file as its argument (any file in the cfrg test-vectors.json schema).
add_executable(hpke_vectors ${CMAKE_SOURCE_DIR}/tests/crypto/hpke_vectors.c)
target_link_libraries(hpke_vectors PRIVATE coffer_crypto coffer_testlib)
add_test(NAME crypto/hpke_vectors
         COMMAND hpke_vectors ${COFFER_TESTDATA}/hpke/rfc9180-appendix-a.json)
set_tests_properties(crypto/hpke_vectors PROPERTIES
  ENVIRONMENT "COFFER_TESTDATA=${COFFER_TESTDATA}" TIMEOUT 300)
