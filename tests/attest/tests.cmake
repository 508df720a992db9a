# Extra registrations for tests/attest (owner: the simulator, see
# docs/internals/simulator.md). Other attest tests are auto-registered.

# sim_helper: not a test. coffer-launch runs it in test_sim as the "TEE
# runtime" that asks for reports through the launcher provider.
add_executable(sim_helper ${CMAKE_SOURCE_DIR}/tests/attest/sim_helper.c)
target_link_libraries(sim_helper PRIVATE coffer_attest)

if(TARGET test_sim AND TARGET coffer-launch)
  add_dependencies(test_sim sim_helper coffer-launch)
  target_compile_definitions(test_sim PRIVATE
    COFFER_LAUNCH_BIN="$<TARGET_FILE:coffer-launch>"
    SIM_HELPER_BIN="$<TARGET_FILE:sim_helper>")
endif()
