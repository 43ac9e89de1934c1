# Runs an example and checks both that it exits 0 and that what it prints matches a regular
# expression:  cmake -DPROGRAM=<path> [-DARGS=<arguments>] -DOUTPUT=<regex> -P expect_output.cmake
separate_arguments(arguments UNIX_COMMAND "${ARGS}")
execute_process(COMMAND ${PROGRAM} ${arguments} RESULT_VARIABLE exit_code OUTPUT_VARIABLE output ERROR_VARIABLE output)
message("${output}")
if(NOT exit_code STREQUAL "0")
  message(FATAL_ERROR "${PROGRAM} exited with ${exit_code}")
endif()
if(NOT output MATCHES "${OUTPUT}")
  message(FATAL_ERROR "${PROGRAM}'s output does not match: ${OUTPUT}")
endif()
