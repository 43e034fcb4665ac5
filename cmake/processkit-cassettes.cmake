# pk_cassette_dir(<target> [DIR <dir>])
#
# Bake the directory where <pk/cassette_cmocka.h> keeps a test's
# cassettes into <target> (PK_CASSETTE_SOURCE_DIR). ctest runs each test
# in the build directory, so the default "cassettes" would land there;
# this gives an absolute path instead: DIR (relative to the current
# source directory), or ${CMAKE_CURRENT_SOURCE_DIR}/cassettes. The
# environment variable PK_CASSETTE_DIR still overrides it at run time.
function(pk_cassette_dir target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "DIR" "")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "pk_cassette_dir: unexpected arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "pk_cassette_dir: ${target} is not a target")
  endif()
  if(NOT arg_DIR)
    set(arg_DIR cassettes)
  endif()
  get_filename_component(dir "${arg_DIR}" ABSOLUTE
                         BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  target_compile_definitions(${target} PRIVATE
    PK_CASSETTE_SOURCE_DIR="${dir}")
endfunction()
