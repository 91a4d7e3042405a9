-- luarocks make --tree TREE   (from this directory; Debian's luarocks, Lua 5.4)
-- Builds the Lua binding with the repository's CMake and installs rill.lua and
-- rill_core.so, with the librill.so.1 it was built with beside it.
rockspec_format = "3.0"
package = "rill"
version = "1.1.0-1"
source = { url = "git+file:///dev/null" } -- built from the checkout by `luarocks make`
description = {
  summary = "asyncio's model on rill, an event loop in C on libev",
  detailed = "rill.run, spawn, sleep, gather, wait_for, timeouts and task groups on Lua coroutines, over librill.",
  license = "unspecified",
}
dependencies = { "lua >= 5.3" }
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    RILL_TESTS = "OFF", RILL_BENCH = "OFF", RILL_EXAMPLES = "OFF", RILL_INSTALL = "OFF",
    RILL_PYTHON = "OFF", RILL_RUBY = "OFF", RILL_CPP = "OFF", RILL_LUA = "ON",
    RILL_LUA_CMOD_DIR = "$(LIBDIR)",
    RILL_LUA_LMOD_DIR = "$(LUADIR)",
  },
}
