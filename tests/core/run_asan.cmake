# cmake -P script behind the core_asan_ubsan test: configures a separate build
# tree of the same source with ASan+UBSan, builds the core suite there with
# the same compilers, and runs its ctest. Any failure fails the test.
foreach(var SOURCE_DIR BINARY_DIR C_COMPILER CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_asan.cmake: ${var} not set")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE RelWithDebInfo)
endif()
if(NOT DEFINED WERROR)
  set(WERROR OFF)
endif()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "core_asan_ubsan: ${what} failed (${rc})")
  endif()
endfunction()

run_step(configure
  ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR}
  -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
  -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DRILL_WERROR=${WERROR}
  -DRILL_SANITIZE=address,undefined
  -DRILL_TESTS=ON -DRILL_BENCH=OFF -DRILL_PYTHON=OFF -DRILL_LUA=OFF -DRILL_RUBY=OFF
  -DRILL_CPP=OFF -DRILL_VALGRIND_TESTS=OFF -DRILL_SANITIZER_TESTS=OFF)
run_step(build ${CMAKE_COMMAND} --build ${BINARY_DIR} -j2 --target rill_core_tests)

# Sanitizer reports abort the test process, which fails its CTest.
set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
run_step(ctest ${CMAKE_CTEST_COMMAND} --test-dir ${BINARY_DIR} --output-on-failure
  -L core)
