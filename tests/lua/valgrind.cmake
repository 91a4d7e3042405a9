# A sample of the Lua suite under valgrind (labels lua, valgrind), included
# at the end of bindings/lua/CMakeLists.txt: test_robust, test_basic,
# test_sync and test_loop whole, test_io but one case, and the in-process cases of test_hostile (its Ctrl+C and exit cases
# start child interpreters, which valgrind would not follow). Memory errors
# and definite leaks fail the test.
if(RILL_TESTS AND RILL_VALGRIND_TESTS AND RILL_LUA_EXECUTABLE)
  find_program(VALGRIND_EXECUTABLE valgrind)
  if(VALGRIND_EXECUTABLE)
    set(_lua_vg ${VALGRIND_EXECUTABLE} -q --error-exitcode=99 --leak-check=full
        --errors-for-leak-kinds=definite --num-callers=30)
    set(_lua_dir ${PROJECT_SOURCE_DIR}/tests/lua)
    add_test(NAME lua_valgrind.robust COMMAND ${_lua_vg} ${RILL_LUA_EXECUTABLE} test_robust.lua
             WORKING_DIRECTORY ${_lua_dir} ${RILL_HEAVY})
    # valgrind runs the interpreter tens of times slower: the one timed
    # case there (Ctrl+C ends rill.run within 50 ms) allows 0.5 s
    set_tests_properties(lua_valgrind.robust PROPERTIES ENVIRONMENT RILL_UNDER_VALGRIND=1)
    add_test(NAME lua_valgrind.basic COMMAND ${_lua_vg} ${RILL_LUA_EXECUTABLE} test_basic.lua
             WORKING_DIRECTORY ${_lua_dir} ${RILL_HEAVY})
    add_test(NAME lua_valgrind.sync COMMAND ${_lua_vg} ${RILL_LUA_EXECUTABLE} test_sync.lua
             WORKING_DIRECTORY ${_lua_dir} ${RILL_HEAVY})
    # the in-process cases: every T.case before the first ctrl_c_/os_exit_ one
    file(STRINGS ${_lua_dir}/test_hostile.lua _lines REGEX "^T\\.case\\(\"[A-Za-z0-9_]+\"")
    set(_cases)
    foreach(_line ${_lines})
      string(REGEX REPLACE "^T\\.case\\(\"([A-Za-z0-9_]+)\".*" "\\1" _case "${_line}")
      if(NOT _case MATCHES "^(ctrl_c_|os_exit_|error_at_top|loop_object_left)")
        list(APPEND _cases ${_case})
      endif()
    endforeach()
    add_test(NAME lua_valgrind.hostile
             COMMAND ${_lua_vg} ${RILL_LUA_EXECUTABLE} test_hostile.lua ${_cases}
             WORKING_DIRECTORY ${_lua_dir} ${RILL_HEAVY})
    # test_io: every case but spawn_missing_program (valgrind runs
    # posix_spawn's CLONE_VFORK child as a fork, so an exec failure is not
    # reported to the parent there: a valgrind artefact, not rill's)
    file(STRINGS ${_lua_dir}/test_io.lua _lines REGEX "^T\\.case\\(\"[A-Za-z0-9_]+\"")
    set(_io_cases)
    foreach(_line ${_lines})
      string(REGEX REPLACE "^T\\.case\\(\"([A-Za-z0-9_]+)\".*" "\\1" _case "${_line}")
      if(NOT _case STREQUAL "spawn_missing_program")
        list(APPEND _io_cases ${_case})
      endif()
    endforeach()
    add_test(NAME lua_valgrind.io COMMAND ${_lua_vg} ${RILL_LUA_EXECUTABLE} test_io.lua ${_io_cases}
             WORKING_DIRECTORY ${_lua_dir} ${RILL_HEAVY})
    # test_loop whole: loop objects closed, stopped and collected unclosed
    # (its debug-report cases run child interpreters, outside valgrind)
    add_test(NAME lua_valgrind.loop COMMAND ${_lua_vg} ${RILL_LUA_EXECUTABLE} test_loop.lua
             WORKING_DIRECTORY ${_lua_dir} ${RILL_HEAVY})
    set_tests_properties(lua_valgrind.robust lua_valgrind.basic lua_valgrind.sync lua_valgrind.hostile
                         lua_valgrind.io lua_valgrind.loop
                         PROPERTIES
      ENVIRONMENT "${RILL_LUA_ENV}" LABELS "lua;valgrind;heavy" TIMEOUT 300)
  endif()
endif()
