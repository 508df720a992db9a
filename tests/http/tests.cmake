# Extra http test wiring (include()d from the top CMakeLists.txt).
# test_http creates its certificates with the internal PKI helper (crypto/pki.h);
# only the test links crypto, the http module itself stays on base.
if(TARGET test_http AND TARGET coffer_crypto)
  target_link_libraries(test_http PRIVATE coffer_crypto)
endif()
