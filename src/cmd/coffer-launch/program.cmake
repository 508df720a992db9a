# coffer-launch: the simulated secure processor (docs/internals/simulator.md).
add_executable(coffer-launch ${CMAKE_SOURCE_DIR}/src/cmd/coffer-launch/main.c)
target_link_libraries(coffer-launch PRIVATE coffer_attest coffer_crypto coffer_base)
