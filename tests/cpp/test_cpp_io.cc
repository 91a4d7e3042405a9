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

rill::task<std::string> udp_ping() {
  auto a = rill::udp::open("127.0.0.1", 0);
  auto b = rill::udp::open("127.0.0.1", 0);
  b.connect("127.0.0.1", a.port());
  b.send("ping");
  rill::datagram d = co_await a.recv();
  EXPECT_EQ(d.sender, "127.0.0.1:" + std::to_string(b.port()));
  a.send_to("pong:" + d.data, "127.0.0.1", b.port());
  rill::datagram r = co_await rill::wait_for(b.recv(), 5s);
  auto pending = rill::spawn([](rill::udp &u) -> rill::task<int> {
    try {
      co_await u.recv();
    } catch (const rill::error &e) {
      co_return e.code();
    }
    co_return 0;
  }(a));
  co_await rill::sleep(0ms);
  a.close();
  EXPECT_EQ(co_await pending, RILL_ENOTCONN);
  EXPECT_THROW(a.send_to("x", "127.0.0.1", b.port()), rill::error);
  co_return r.data;
}

TEST(CppIo, UdpSendReceiveAndCloseFailsAPendingReceive) { EXPECT_EQ(rill::run(udp_ping()), "pong:ping"); }

TEST(CppIo, UdpBadInputThrows) {
  rill::loop l;
  EXPECT_THROW(rill::udp::open("not an address", 0, 0, l.native()), rill::error);
}

rill::task<std::string> connect_by_name() {
  auto l = rill::listener::tcp("127.0.0.1", 0);
  rill::stream c = co_await rill::connect("localhost", l.port(), 5);
  rill::stream s = co_await l.accept();
  c.write("hi");
  c.write_eof();
  std::string got = co_await s.read_exactly(2);
  co_return got + "@" + c.peer_name();
}

TEST(CppIo, ConnectResolvesAName) {
  auto l = rill::run(connect_by_name());
  EXPECT_EQ(l.substr(0, 13), "hi@127.0.0.1:");
}

rill::task<std::string> process_lines() {
  rill::process::options o;
  o.stdio[0] = RILL_STDIO_PIPE;
  o.stdio[1] = RILL_STDIO_PIPE;
  auto p = rill::process::spawn({"sh", "-c", "read x; echo got:$x; echo done"}, o);
  rill::stream in = p.stream(0);
  rill::stream out = p.stream(1);
  EXPECT_THROW(p.stream(1), rill::error);  // moved already
  in.write("abc\n");
  co_await in.drain();
  std::string a = co_await out.read_until("\n");
  std::string b = co_await out.read_until("\n");
  int rc = co_await p.wait();
  co_return a + b + std::to_string(rc);
}

TEST(CppIo, ProcessPipesAreStreams) { EXPECT_EQ(rill::run(process_lines()), "got:abc\ndone\n0"); }

}  // namespace
