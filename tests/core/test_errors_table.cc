// bindings/common/rill_errors.h: every code of RILL_ERRNO_MAP has an entry
// in each language's column, a code without one takes the default, and
// codes added later (by other branches) map without editing the header.
#include <set>
#include <string>

#include "rill_test.h"
#include "rill_errors.h"

struct TableRow {
  int code;
  std::string name, py, lua, rb;
};
#define RILL_ERROR_ROW(name, code, text, py, lua, rb) {code, name, py, lua, rb},
static const TableRow kRows[] = {RILL_ERRNO_MAP(RILL_BINDING_ERROR_ROW)};
#undef RILL_ERROR_ROW

TEST(ErrorsTable, EveryCodeHasAnEntryInEveryColumn) {
  size_t n = 0;
  for (const TableRow &r : kRows) {
    SCOPED_TRACE(r.name);
    EXPECT_FALSE(r.py.empty());
    EXPECT_FALSE(r.rb.empty());
    EXPECT_EQ(r.lua, "RILL_" + r.name) << "Lua's error name is the code's symbolic name";
    EXPECT_EQ(r.py, rill_python_class(r.code)) << "the X-macro and the lookup agree";
    EXPECT_EQ(r.lua, rill_lua_name(r.code));
    EXPECT_EQ(r.rb, rill_ruby_class(r.code));
    EXPECT_STREQ(rill_lua_name(r.code), rill_err_name(r.code));
    n++;
  }
  EXPECT_GE(n, 12u);
}

TEST(ErrorsTable, TheOneZeroCodesMapAsTheBindingsDid) {
  EXPECT_STREQ(rill_python_class(RILL_EINVAL), "ValueError");
  EXPECT_STREQ(rill_python_class(RILL_ESTATE), "asyncio.InvalidStateError");
  EXPECT_STREQ(rill_python_class(RILL_ECANCELLED), "asyncio.CancelledError");
  EXPECT_STREQ(rill_python_class(RILL_ETIMEDOUT), "TimeoutError");
  EXPECT_STREQ(rill_python_class(RILL_EEXCEPTION), "rill.Error");
  EXPECT_STREQ(rill_python_class(RILL_EGROUP), "rill.Error");
  EXPECT_STREQ(rill_ruby_class(RILL_EINVAL), "ArgumentError");
  EXPECT_STREQ(rill_ruby_class(RILL_ECANCELLED), "Rill::CancelledError");
  EXPECT_STREQ(rill_ruby_class(RILL_ETIMEDOUT), "Rill::TimeoutError");
  EXPECT_STREQ(rill_ruby_class(RILL_ESTATE), "Rill::Error");
}

TEST(ErrorsTable, CodesOutsideTheTableTakeTheDefault) {
  for (int code : {-98, -1000, -5000, 1}) {
    SCOPED_TRACE(code);
    EXPECT_STREQ(rill_python_class(code), RILL_PY_DEFAULT);
    EXPECT_STREQ(rill_ruby_class(code), RILL_RB_DEFAULT);
    EXPECT_STREQ(rill_lua_name(code), "RILL_EAPP");
  }
}

// A map as another branch extends it: a new code with no entry takes the
// default, a new code with an entry (written ahead) takes that entry.
#define TEST_EXTENDED_MAP(XX)        \
  RILL_ERRNO_MAP(XX)                 \
  XX(EBRANDNEW, -77, "a code from another branch") \
  XX(ECONNREFUSED_TEST, -78, "x")
#define RILL_PY_ECONNREFUSED_TEST ~, "ConnectionRefusedError"

TEST(ErrorsTable, ACodeAddedLaterMapsWithoutEditingTheHeader) {
#define RILL_ERROR_ROW(name, code, text, py, lua, rb) {code, name, py, lua, rb},
  static const TableRow rows[] = {TEST_EXTENDED_MAP(RILL_BINDING_ERROR_ROW)};
#undef RILL_ERROR_ROW
  const TableRow &fresh = rows[sizeof rows / sizeof rows[0] - 2];
  EXPECT_EQ(fresh.name, "EBRANDNEW");
  EXPECT_EQ(fresh.py, RILL_PY_DEFAULT);
  EXPECT_EQ(fresh.rb, RILL_RB_DEFAULT);
  EXPECT_EQ(fresh.lua, "RILL_EBRANDNEW");
  const TableRow &ahead = rows[sizeof rows / sizeof rows[0] - 1];
  EXPECT_EQ(ahead.py, "ConnectionRefusedError");
}

// errno.h defines EINVAL, EINTR, ...: the table must not expand them.
#include <cerrno>
TEST(ErrorsTable, NamesAreNotExpandedByErrnoMacros) {
  EXPECT_STREQ(rill_lua_name(RILL_EINVAL), "RILL_EINVAL");
  EXPECT_STREQ(rill_python_class(RILL_EINTR), "InterruptedError");
  EXPECT_STREQ(rill_ruby_class(RILL_EINVAL), "ArgumentError");
}
