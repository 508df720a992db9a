# libcoffer, the client SDK (include/coffer.h, docs/SDK.md), include()d once from
# CMakeLists.txt after the programs:
#
#   ${CMAKE_BINARY_DIR}/sdk/libcoffer.so[.0[.1.0]]  shared library
#   ${CMAKE_BINARY_DIR}/sdk/libcoffer.a             static library
#   ${CMAKE_BINARY_DIR}/sdk/coffer.pc               pkg-config file for the BUILD TREE
#                                                   (headers from the source tree, an rpath
#                                                   to the build tree's library)
#   ${CMAKE_BINARY_DIR}/sdk/install/coffer.pc       the one `cmake --install` installs
#
# Both libraries hold the sdk module and the modules it depends on. Exported
# symbols: the sdk objects are compiled with -fvisibility=hidden (the API is
# marked COFFER_API), and the version script coffer.map keeps every other
# symbol (the cf_* internals of the lower modules) out of the shared library's
# dynamic symbol table. The static library necessarily carries the cf_* names
# too; its objects are only pulled in as needed.
if(NOT TARGET coffer_sdk)
  return()
endif()

set(COFFER_SDK_DEPS attest proto http crypto base)
set(COFFER_SDK_OUT ${CMAKE_BINARY_DIR}/sdk)
target_compile_options(coffer_sdk PRIVATE -fvisibility=hidden)

set(_sdk_dep_targets)
set(_sdk_objects $<TARGET_OBJECTS:coffer_sdk>)
foreach(_m ${COFFER_SDK_DEPS})
  list(APPEND _sdk_dep_targets coffer_${_m})
  list(APPEND _sdk_objects $<TARGET_OBJECTS:coffer_${_m}>)
endforeach()

add_library(coffer_shared SHARED $<TARGET_OBJECTS:coffer_sdk>)
target_link_libraries(coffer_shared PRIVATE ${_sdk_dep_targets})
target_link_options(coffer_shared PRIVATE
  "LINKER:--version-script=${CMAKE_SOURCE_DIR}/src/sdk/coffer.map")
if(NOT COFFER_SANITIZE AND NOT COFFER_FUZZ)
  # Every dependency is linked in; sanitizer runtimes come from the executable.
  target_link_options(coffer_shared PRIVATE "LINKER:--no-undefined")
endif()
set_target_properties(coffer_shared PROPERTIES
  OUTPUT_NAME coffer
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}
  LIBRARY_OUTPUT_DIRECTORY ${COFFER_SDK_OUT}
  LINK_DEPENDS ${CMAKE_SOURCE_DIR}/src/sdk/coffer.map)

add_library(coffer_static STATIC ${_sdk_objects})
set_target_properties(coffer_static PROPERTIES
  OUTPUT_NAME coffer
  LINKER_LANGUAGE C
  ARCHIVE_OUTPUT_DIRECTORY ${COFFER_SDK_OUT})

# pkg-config: the build-tree file lets examples/ build against this build
# directory (tests/sdk); in a sanitizer build the library needs the sanitizer
# runtime at link time, so its Libs say so.
set(PC_PREFIX ${CMAKE_BINARY_DIR})
set(PC_LIBDIR ${COFFER_SDK_OUT})
set(PC_INCLUDEDIR ${CMAKE_SOURCE_DIR}/include)
set(PC_EXTRA_LIBS " -Wl,-rpath,\${libdir}")
if(COFFER_SANITIZE)
  string(APPEND PC_EXTRA_LIBS " -fsanitize=address,undefined")
endif()
configure_file(${CMAKE_SOURCE_DIR}/src/sdk/coffer.pc.in ${COFFER_SDK_OUT}/coffer.pc @ONLY)

include(GNUInstallDirs)
set(PC_PREFIX ${CMAKE_INSTALL_PREFIX})
set(PC_LIBDIR \${prefix}/${CMAKE_INSTALL_LIBDIR})
set(PC_INCLUDEDIR \${prefix}/${CMAKE_INSTALL_INCLUDEDIR})
set(PC_EXTRA_LIBS "")
configure_file(${CMAKE_SOURCE_DIR}/src/sdk/coffer.pc.in ${COFFER_SDK_OUT}/install/coffer.pc @ONLY)

install(TARGETS coffer_shared coffer_static
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/coffer.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${COFFER_SDK_OUT}/install/coffer.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
