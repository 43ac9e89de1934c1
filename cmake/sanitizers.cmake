# LOOPBRIDGE_SANITIZE applies to the whole build so that the library, the tests and the
# examples are instrumented alike (a half-instrumented binary gives false reports).
if(LOOPBRIDGE_SANITIZE)
  set(_loopbridge_sanitize_flags -fsanitize=${LOOPBRIDGE_SANITIZE} -fno-omit-frame-pointer -g)
  if(LOOPBRIDGE_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Asio's handler invocation uses std::atomic_thread_fence, which TSan does not model; the
    # handlers loopbridge posts cross threads through the scheduler's mutex, which it does.
    list(APPEND _loopbridge_sanitize_flags -Wno-tsan)
  endif()
  if(LOOPBRIDGE_SANITIZE MATCHES "undefined")
    list(APPEND _loopbridge_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${_loopbridge_sanitize_flags})
  add_link_options(${_loopbridge_sanitize_flags})
endif()
