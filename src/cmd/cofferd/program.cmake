# cofferd: one binary, one service per process. A service is compiled in when
# its module library exists and has src/<module>/main.c defining cf_<service>_main.
add_executable(cofferd ${CMAKE_SOURCE_DIR}/src/cmd/cofferd/main.c)
foreach(_pair "kms;KMS" "iam;IAM" "audit;AUDIT" "attestsvc;ATTESTSVC" "gateway;GATEWAY")
  list(GET _pair 0 _m)
  list(GET _pair 1 _d)
  if(TARGET coffer_${_m} AND EXISTS ${CMAKE_SOURCE_DIR}/src/${_m}/main.c)
    target_link_libraries(cofferd PRIVATE coffer_${_m})
    target_compile_definitions(cofferd PRIVATE COFFER_HAVE_${_d}=1)
  endif()
endforeach()
target_link_libraries(cofferd PRIVATE coffer_base)
