// rill.hpp's I/O: co_await connect/listen/accept and the stream methods.
#include <gtest/gtest.h>

#include <string>

#include <rill.hpp>

using namespace std::chrono_literals;

namespace {

rill::task<std::string> echo_once(rill::listener &l) {
  rill::stream s = co_await l.accept();
  std::string line = co_await s.read_until("\n");
  s.write(line);
  co_await s.drain();
  std::string rest = co_await s.read_exactly(3);
  s.write(rest);
  s.close();
  co_await s.wait_closed();
  co_return line + rest;
}

rill::task<std::string> client(int port) {
  rill::stream c = co_await rill::connect("127.0.0.1", port, 5);
  EXPECT_EQ(c.peer_name(), "127.0.0.1:" + std::to_string(port));
  c.write("hello\nabc");
  std::string got = co_await c.read_exactly(9);
  std::string end = co_await c.read(10);
  EXPECT_EQ(end, "");
  co_return got;
}

rill::task<std::string> both() {
  auto l = rill::listener::tcp("127.0.0.1", 0);
  auto server = rill::spawn(echo_once(l));
  std::string got = co_await client(l.port());
  std::string seen = co_await server;
  co_return got + "|" + seen;
}

TEST(CppIo, EchoWithCoAwait) { EXPECT_EQ(rill::run(both()), "hello\nabc|hello\nabc"); }

rill::task<int> refused() {
  int port;
  {
    auto l = rill::listener::tcp("127.0.0.1", 0);
    port = l.port();
  }  // closed
  try {
    rill::stream c = co_await rill::connect("127.0.0.1", port, 5);
  } catch (const rill::error &e) {
    co_return e.code();
  }
  co_return 0;
}

TEST(CppIo, ConnectRefusedThrowsTheCode) { EXPECT_EQ(rill::run(refused()), RILL_ECONNREFUSED); }

rill::task<int> limit() {
  auto l = rill::listener::tcp("127.0.0.1", 0);
  rill::stream c = co_await rill::connect("127.0.0.1", l.port());
  rill::stream s = co_await l.accept();
  c.write(std::string(64, 'x'));
  try {
    co_await s.read_until("\n", 16);
  } catch (const rill::error &e) {
    EXPECT_EQ(e.code(), RILL_ELIMIT);
  }
  std::string kept = co_await s.read_exactly(64);  // nothing lost
  co_return static_cast<int>(kept.size());
}

TEST(CppIo, ReadUntilLimitKeepsTheData) { EXPECT_EQ(rill::run(limit()), 64); }

rill::task<int> cancelled_read() {
  auto l = rill::listener::tcp("127.0.0.1", 0);
  rill::stream c = co_await rill::connect("127.0.0.1", l.port());
  rill::stream s = co_await l.accept();
  try {
    co_await rill::wait_for(s.read(10), 20ms);
  } catch (const rill::timeout_error &) {
    co_return 1;
  }
  co_return 0;
}

TEST(CppIo, ReadUnderWaitForTimesOut) { EXPECT_EQ(rill::run(cancelled_read()), 1); }

}  // namespace
