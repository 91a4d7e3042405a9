# cmake -P script behind the core_tsan test: configures a separate build tree
# of the same source with -fsanitize=thread (the ucontext context switch is
# chosen there, core/CMakeLists.txt), builds the thread tests and runs them.
# Any TSan report fails the test (halt_on_error).
foreach(var SOURCE_DIR BINARY_DIR C_COMPILER CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_tsan.cmake: ${var} not set")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE RelWithDebInfo)
endif()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "core_tsan: ${what} failed (${rc})")
  endif()
endfunction()

run_step(configure
  ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR}
  -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
  -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DRILL_SANITIZE=thread
  -DRILL_TESTS=ON -DRILL_BENCH=OFF -DRILL_PYTHON=OFF -DRILL_LUA=OFF -DRILL_RUBY=OFF
  -DRILL_CPP=OFF -DRILL_VALGRIND_TESTS=OFF -DRILL_SANITIZER_TESTS=OFF)
run_step(build ${CMAKE_COMMAND} --build ${BINARY_DIR} -j2 --target rill_tsan_tests)

# Kernels with 32 bits of mmap randomness break older TSan runtimes
# ("unexpected memory mapping"): run without ASLR when setarch can.
find_program(SETARCH setarch)
set(prefix)
if(SETARCH)
  execute_process(COMMAND ${SETARCH} -R true RESULT_VARIABLE setarch_rc OUTPUT_QUIET ERROR_QUIET)
  if(setarch_rc EQUAL 0)
    set(prefix ${SETARCH} -R)
  endif()
endif()
set(ENV{TSAN_OPTIONS} "halt_on_error=1:second_deadlock_stack=1")
set(ENV{RILL_TEST_LATE_SLACK} "1.5") # TSan runs 5-15x slower: looser "not too late" bounds
# TSan defers an asynchronous signal until the thread calls into libc; a
# main coroutine spinning on rill_yield never does, so that one test (which
# the plain, ASan and valgrind runs cover) is left out here.
run_step(tests ${prefix} ${BINARY_DIR}/tests/core/rill_tsan_tests
  --gtest_filter=-Sigint.RillRunCancelsABusyMainWithin50ms)
