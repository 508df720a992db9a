# coffer-tee: the TEE runtime (docs/internals/tee.md), and the demo deployment
# bundle it signs at build time (demo/demo.cmake).
if(TARGET coffer_tee)
  add_executable(coffer-tee ${CMAKE_SOURCE_DIR}/src/cmd/coffer-tee/main.c)
  target_link_libraries(coffer-tee PRIVATE coffer_tee)
  include(${CMAKE_SOURCE_DIR}/demo/demo.cmake)
endif()
