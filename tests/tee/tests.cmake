# Extra wiring for tests/tee (docs/internals/tee.md "Tests"); the test_*.c
# programs themselves are auto-registered.
#
# The probe job (tests/tee/jobs/probe.c) misbehaves on request; it is built like
# the demo jobs (static, no sanitizers: demo/demo.cmake).
if(COMMAND coffer_job_binary AND TARGET demo-bundle)
  coffer_job_binary(_tee_probe tee-probe ${CMAKE_SOURCE_DIR}/tests/tee/jobs/probe.c
                    ${CMAKE_SOURCE_DIR}/demo/jobs/job_io.h)
  add_custom_target(tee-test-jobs ALL DEPENDS ${_tee_probe})
  foreach(_t test_sandbox test_bundle test_tee_e2e)
    # A file name another module also uses gets the module prefix (top CMakeLists).
    set(_target ${_t})
    if(TARGET tee_${_t})
      set(_target tee_${_t})
    endif()
    if(TARGET ${_target})
      add_dependencies(${_target} tee-test-jobs demo-bundle coffer-tee)
      target_compile_definitions(${_target} PRIVATE
        TEE_PROBE_BIN="${_tee_probe}"
        TEE_JOBS_DIR="${CMAKE_BINARY_DIR}/jobs"
        TEE_DEMO_BUNDLE="${COFFER_DEMO_BUNDLE}"
        COFFER_TEE_BIN="$<TARGET_FILE:coffer-tee>")
      if(_t STREQUAL "test_tee_e2e" AND TARGET coffer-launch)
        add_dependencies(${_target} coffer-launch)
        target_compile_definitions(${_target} PRIVATE
          COFFER_LAUNCH_BIN="$<TARGET_FILE:coffer-launch>")
      endif()
    endif()
  endforeach()
endif()
