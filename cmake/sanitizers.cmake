# LOOPBRIDGE_SANITIZE applies to the whole build so that the library, the tests and the
# examples are instrumented alike (a half-instrumented binary gives false reports).
if(LOOPBRIDGE_SANITIZE)
  # -g1 (line tables): reports name every frame's file and line, and the sanitizer builds
  # compile about a third faster than with full debug information.
  set(_loopbridge_sanitize_flags -fsanitize=${LOOPBRIDGE_SANITIZE} -fno-omit-frame-pointer -g1)
  if(LOOPBRIDGE_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Asio's handler invocation uses std::atomic_thread_fence, which TSan does not model; the
    # handlers loopbridge posts cross threads through the scheduler's mutex, which it does.
    list(APPEND _loopbridge_sanitize_flags -Wno-tsan)
  endif()
  if(LOOPBRIDGE_SANITIZE MATCHES "undefined")
    list(APPEND _loopbridge_sanitize_flags -fno-sanitize-recover=undefined)
    if(LOOPBRIDGE_SANITIZE MATCHES "fuzzer" AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang"
       AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
      # clang 14's -fsanitize=function cannot be assembled next to libFuzzer's coverage
      # counters in coroutine code ("Cannot represent a difference across sections"): leave
      # out that one check (a call through a function pointer of the wrong type).
      list(APPEND _loopbridge_sanitize_flags -fno-sanitize=function)
    endif()
  endif()
  add_compile_options(${_loopbridge_sanitize_flags})
  add_link_options(${_loopbridge_sanitize_flags})
endif()
