# Runs examples/seed.lua; checks the order of its lines and that it takes
# 0.95-1.2 s (about one second, not two). The time is the script's own, from
# CLOCK_MONOTONIC around dofile (so interpreter start-up on a loaded machine
# does not count).
set(pre "local c = require 'rill_core'; local t0 = c.monotonic(); dofile('${SCRIPT}'); io.stderr:write(('SEED_SECONDS=%.6f\\n'):format(c.monotonic() - t0))")
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env "LUA_PATH=${LUA_PATH}" "LUA_CPATH=${LUA_CPATH}" ${LUA} -e "${pre}"
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message(STATUS "seed.lua:\n${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "seed.lua exited with ${rc}")
endif()
set(expected "Task A started\nTask B started\nTask A finished\nTask B finished\n")
if(NOT out STREQUAL expected)
  message(FATAL_ERROR "unexpected output:\n${out}")
endif()
if(NOT err MATCHES "SEED_SECONDS=([0-9.]+)")
  message(FATAL_ERROR "no timing")
endif()
set(s ${CMAKE_MATCH_1})
if(s LESS 0.95 OR s GREATER 1.2)
  message(FATAL_ERROR "seed.lua took ${s} s, expected 0.95-1.2 s")
endif()
