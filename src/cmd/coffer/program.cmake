# The `coffer` CLI. Subcommand files are globbed; link the modules they use.
file(GLOB _coffer_cli_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cmd/coffer/*.c)
add_executable(coffer ${_coffer_cli_srcs})
target_link_libraries(coffer PRIVATE coffer_base)
foreach(_m sdk tee attest auditlog proto http crypto) # tee: cf_bundle_sign_dir (deployment create)
  if(TARGET coffer_${_m})
    target_link_libraries(coffer PRIVATE coffer_${_m})
  endif()
endforeach()
