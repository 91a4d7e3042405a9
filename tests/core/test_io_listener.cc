// Listeners: accept loop, EMFILE, close semantics, SO_REUSEPORT across
// loops on threads, many connections.
#include <netinet/in.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "io_test.h"

using namespace rilltest;

namespace {

class Listener : public IoTest {};

int BlockingConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct Accepted {
  std::vector<rill_stream *> conns;
};

void KeepConn(rill_listener *, rill_stream *conn, void *arg) {
  static_cast<Accepted *>(arg)->conns.push_back(rill_stream_retain(conn));
}

TEST_F(Listener, AddressInUseNamesTheAddress) {
  rill_listener *l = Listen();
  int port = rill_listener_port(l);
  EXPECT_NULL_WITH(rill_tcp_listen(loop, "127.0.0.1", port, 0, 0), RILL_EADDRINUSE);
  EXPECT_NE(std::string(rill_last_error_message()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << rill_last_error_message();
  EXPECT_EQ(rill_last_error_errno(), EADDRINUSE);
  rill_listener_close(l);
  rill_listener_release(l);
}

// asyncio's Server.close drops the protocol factory: the callback's argument
// goes at close (its owner may be referred to by it: a cycle), and a close
// from inside the callback frees it only once the callback has returned.
struct DropState {
  rill_listener *l = nullptr;
  int calls = 0, frees = 0, frees_seen_in_cb = 0;
  std::vector<rill_stream *> conns;
};

void CloseFromCallback(rill_listener *l, rill_stream *conn, void *arg) {
  auto *st = static_cast<DropState *>(arg);
  st->calls++;
  st->conns.push_back(rill_stream_retain(conn));
  EXPECT_EQ(rill_listener_close(l), RILL_OK);
  st->frees_seen_in_cb = st->frees;  // still 0: the argument is in use
}

TEST_F(Listener, CloseDropsTheCallbackAndFreesItsArgument) {
  for (int inside = 0; inside < 2; inside++) {
    DropState st;
    rill_listener *l = Listen();
    int port = rill_listener_port(l);
    auto free_fn = [](void *p) { static_cast<DropState *>(p)->frees++; };
    ASSERT_EQ(rill_listener_set_callback(l, inside ? CloseFromCallback : [](rill_listener *, rill_stream *c, void *a) {
      static_cast<DropState *>(a)->calls++;
      static_cast<DropState *>(a)->conns.push_back(rill_stream_retain(c));
    }, &st, free_fn), RILL_OK);
    int c1 = BlockingConnect(port);
    ASSERT_GE(c1, 0);
    while (st.calls == 0) rill_loop_run_once(loop, 0.1);
    if (!inside) {
      EXPECT_EQ(st.frees, 0);
      EXPECT_EQ(rill_listener_close(l), RILL_OK);
    }
    EXPECT_EQ(st.frees_seen_in_cb, 0);
    EXPECT_EQ(st.frees, 1) << "freed at close, once";
    EXPECT_FAILS_WITH(rill_listener_set_callback(l, KeepConn, nullptr, nullptr), RILL_ENOTCONN);
    for (auto *s : st.conns) {
      rill_stream_close(s);
      rill_stream_release(s);
    }
    close(c1);
    rill_listener_release(l);
    EXPECT_EQ(st.frees, 1) << "not again at the last release";
    rill_loop_run_once(loop, 0);
  }
}

TEST_F(Listener, CloseStopsAcceptingKeepsConnectionsThenWaitClosed) {
  rill_listener *l = Listen();
  int port = rill_listener_port(l);
  Accepted acc;
  ASSERT_EQ(rill_listener_set_callback(l, KeepConn, &acc, nullptr), RILL_OK);
  int c1 = BlockingConnect(port);
  ASSERT_GE(c1, 0);
  while (acc.conns.empty()) rill_loop_run_once(loop, 0.1);
  rill_future *closed = rill_listener_wait_closed(l);
  EXPECT_EQ(rill_listener_close(l), RILL_OK);
  EXPECT_FAILS_WITH(rill_listener_close(l), RILL_ENOTCONN);
  EXPECT_FAILS_WITH(rill_listener_port(l), RILL_ENOTCONN);
  EXPECT_EQ(BlockingConnect(port), -1);  // no longer accepting
  // the live connection still works
  ASSERT_EQ(write(c1, "x", 1), 1);
  EXPECT_EQ(RunMain([&]() -> int { return AwaitBytes(rill_stream_read(acc.conns[0], 4)) == "x" ? RILL_OK : RILL_ESTATE; }),
            RILL_OK);
  EXPECT_EQ(rill_future_state(closed), RILL_PENDING);  // a connection is still open
  rill_stream_close(acc.conns[0]);
  EXPECT_EQ(rill_future_state(closed), RILL_DONE);
  rill_future_release(closed);
  rill_stream_release(acc.conns[0]);
  close(c1);
  rill_listener_release(l);
}

TEST_F(Listener, AcceptFuturesAreFifoAndFailOnClose) {
  rill_listener *l = Listen();
  int port = rill_listener_port(l);
  rill_future *a1 = rill_listener_accept(l), *a2 = rill_listener_accept(l), *a3 = rill_listener_accept(l);
  int c1 = BlockingConnect(port), c2 = BlockingConnect(port);
  while (rill_future_state(a2) == RILL_PENDING) rill_loop_run_once(loop, 0.1);
  EXPECT_EQ(rill_future_state(a1), RILL_DONE);
  rill_stream *s1 = rill_future_stream(a1), *s2 = rill_future_stream(a2);
  char p1[64], p2[64], l1[64];
  rill_stream_peer_name(s1, p1, sizeof p1);
  rill_stream_peer_name(s2, p2, sizeof p2);
  sockaddr_in sa{};
  socklen_t sl = sizeof sa;
  getsockname(c1, (sockaddr *)&sa, &sl);
  snprintf(l1, sizeof l1, "127.0.0.1:%d", ntohs(sa.sin_port));
  EXPECT_STREQ(p1, l1);  // first connection to first accept
  rill_listener_close(l);
  EXPECT_EQ(rill_future_error(a3), RILL_ENOTCONN);
  rill_stream_abort(s1);
  rill_stream_abort(s2);
  rill_stream_release(s1);
  rill_stream_release(s2);
  rill_future_release(a1);
  rill_future_release(a2);
  rill_future_release(a3);
  close(c1);
  close(c2);
  rill_listener_release(l);
}

TEST_F(Listener, EmfilePausesAcceptReportsAndDoesNotSpin) {
  rill_listener *l = Listen();
  int port = rill_listener_port(l);
  int c1 = BlockingConnect(port), c2 = BlockingConnect(port);
  ASSERT_GE(c2, 0);
  Accepted acc;
  ASSERT_EQ(rill_listener_set_callback(l, KeepConn, &acc, nullptr), RILL_OK);
  struct rlimit old;
  getrlimit(RLIMIT_NOFILE, &old);
  struct rlimit low = old;
  int max_fd = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) >= 0) max_fd = fd;
  low.rlim_cur = max_fd + 1;  // no new fd fits under the limit
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> fillers;  // fill the free numbers below the limit
  for (int fd; (fd = fcntl(0, F_DUPFD_CLOEXEC, 0)) >= 0;) fillers.push_back(fd);
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  double t0 = MonoNow();
  while (MonoNow() - t0 < 0.3) rill_loop_run_once(loop, 0.05);
  getrusage(RUSAGE_SELF, &ru1);
  setrlimit(RLIMIT_NOFILE, &old);
  for (int fd : fillers) close(fd);
  double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
               1e-6 * ((ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec));
  EXPECT_LT(cpu, 0.15) << "the accept loop spun";
  auto reports = TakeReportMessages();
  ASSERT_GE(reports.size(), 1u);
  EXPECT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("RILL_EMFILE"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("127.0.0.1:" + std::to_string(port)), std::string::npos) << reports[0];
  size_t before = acc.conns.size();
  EXPECT_LT(before, 2u);
  // after the pause, accepting resumes
  t0 = MonoNow();
  while (acc.conns.size() < 2 && MonoNow() - t0 < 3) rill_loop_run_once(loop, 0.1);
  EXPECT_EQ(acc.conns.size(), 2u);
  for (auto *s : acc.conns) rill_stream_abort(s), rill_stream_release(s);
  close(c1);
  close(c2);
  rill_listener_close(l);
  rill_listener_release(l);
}

TEST_F(Listener, ReusePortTwoLoopsOnTwoThreads) {
  rill_listener *probe = rill_tcp_listen(loop, "127.0.0.1", 0, 0, RILL_LISTEN_REUSEPORT);
  ASSERT_NE(probe, nullptr);
  int port = rill_listener_port(probe);
  std::atomic<int> served[2] = {0, 0};
  std::atomic<int> ready{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; i++) {
    threads.emplace_back([&, i] {
      rill_loop *l = rill_loop_new();
      rill_listener *ls = rill_tcp_listen(l, "127.0.0.1", port, 0, RILL_LISTEN_REUSEPORT);
      EXPECT_NE(ls, nullptr) << rill_last_error_message();
      struct Ctx {
        std::atomic<int> *served;
      } ctx{&served[i]};
      rill_listener_set_callback(
          ls,
          [](rill_listener *, rill_stream *c, void *arg) {
            static_cast<Ctx *>(arg)->served->fetch_add(1);
            rill_stream_write(c, "k", 1);
            rill_stream_close(c);
          },
          &ctx, nullptr);
      ready++;
      while (!stop) rill_loop_run_once(l, 0.02);
      rill_listener_close(ls);
      rill_listener_release(ls);
      rill_loop_free(l);
    });
  }
  while (ready < 2) usleep(1000);
  rill_listener_close(probe);  // only the two thread loops listen now
  rill_listener_release(probe);
  int ok = 0;
  for (int i = 0; i < 64; i++) {
    int fd = BlockingConnect(port);
    char c;
    if (fd >= 0 && read(fd, &c, 1) == 1) ok++;
    if (fd >= 0) close(fd);
  }
  stop = true;
  for (auto &t : threads) t.join();
  EXPECT_EQ(ok, 64);
  EXPECT_EQ(served[0] + served[1], 64);
  EXPECT_GT(served[0], 0);  // the kernel spreads 64 connections over both
  EXPECT_GT(served[1], 0);
}

TEST_F(Listener, TenThousandConcurrentConnections) {
  struct rlimit old;
  getrlimit(RLIMIT_NOFILE, &old);
  struct rlimit hi = old;
  hi.rlim_cur = old.rlim_max;
  setrlimit(RLIMIT_NOFILE, &hi);
  long room = (long)hi.rlim_cur - CountFds() - 64;
  int n = (int)std::min<long>(10000, room / 2);
  ASSERT_GT(n, 100);
  if (n < 10000) std::printf("fd limit allows %d concurrent connections (2 fds each)\n", n);
  rill_listener *l = rill_tcp_listen(loop, "127.0.0.1", 0, 4096, 0);
  ASSERT_NE(l, nullptr);
  int port = rill_listener_port(l);
  // server: callback echo
  ASSERT_EQ(rill_listener_set_callback(
                l,
                [](rill_listener *, rill_stream *c, void *) {
                  rill_stream_set_callback(
                      c,
                      [](rill_stream *s, int ev, const void *d, size_t len, int, void *) {
                        if (ev == RILL_STREAM_DATA) rill_stream_write(s, d, len);
                        return 0;
                      },
                      nullptr, nullptr);
                },
                nullptr, nullptr),
            RILL_OK);
  std::vector<rill_stream *> clients(n, nullptr);
  int connected = 0, echoed = 0;
  EXPECT_EQ(RunMain([&]() -> int {
              // all connections open at once, then each does a round trip
              std::vector<rill_future *> fs(n);
              for (int i = 0; i < n; i++) fs[i] = rill_tcp_connect(loop, "127.0.0.1", port, 30);
              for (int i = 0; i < n; i++) {
                clients[i] = AwaitStream(fs[i]);
                if (clients[i]) connected++;
              }
              for (int i = 0; i < n; i++)
                if (clients[i]) rill_stream_write(clients[i], "ping", 4);
              for (int i = 0; i < n; i++)
                if (clients[i] && AwaitBytes(rill_stream_read_exactly(clients[i], 4)) == "ping") echoed++;
              for (int i = 0; i < n; i++)
                if (clients[i]) rill_stream_close(clients[i]), rill_stream_release(clients[i]);
              rill_listener_close(l);
              return AwaitRc(rill_listener_wait_closed(l));
            }),
            RILL_OK);
  EXPECT_EQ(connected, n);
  EXPECT_EQ(echoed, n);
  rill_listener_release(l);
  setrlimit(RLIMIT_NOFILE, &old);
}

TEST_F(Listener, BadInput) {
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  EXPECT_NULL_WITH(rill_tcp_listen(nullptr, "127.0.0.1", 0, 0, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_tcp_listen(closed, "127.0.0.1", 0, 0, 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_tcp_listen(loop, "127.0.0.1", -1, 0, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_tcp_listen(loop, "127.0.0.1", 65536, 0, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_tcp_listen(loop, "not an address", 0, 0, 0), RILL_ENOHOST);
  EXPECT_NULL_WITH(rill_tcp_listen(loop, "127.0.0.1", 0, 0, 0x80), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_tcp_listen(loop, "192.0.2.1", 0, 0, 0), RILL_EADDRNOTAVAIL);  // bind only, no traffic
  EXPECT_NULL_WITH(rill_unix_listen(nullptr, "/tmp/x", 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_unix_listen(closed, "/tmp/x", 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_unix_listen(loop, nullptr, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_unix_listen(loop, "/nonexistent-dir/sock", 0), RILL_ENOENT);
  EXPECT_FAILS_WITH(rill_listener_set_callback(nullptr, KeepConn, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_listener_accept(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_listener_port(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_listener_fd(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_listener_close(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_listener_wait_closed(nullptr), RILL_EINVAL);
  rill_listener_release(nullptr);
  rill_listener *l = Listen();
  EXPECT_GE(rill_listener_fd(l), 0);
  rill_listener_close(l);
  EXPECT_FAILS_WITH(rill_listener_set_callback(l, KeepConn, nullptr, nullptr), RILL_ENOTCONN);
  EXPECT_NULL_WITH(rill_listener_accept(l), RILL_ENOTCONN);
  EXPECT_FAILS_WITH(rill_listener_fd(l), RILL_ENOTCONN);
  rill_future *wc = rill_listener_wait_closed(l);
  EXPECT_EQ(rill_future_state(wc), RILL_DONE);
  rill_future_release(wc);
  rill_listener_release(l);
}

TEST_F(Listener, LoopCloseClosesListener) {
  rill_listener *l = Listen();
  rill_future *a = rill_listener_accept(l);
  CloseLoop();
  EXPECT_NE(rill_future_state(a), RILL_PENDING);
  rill_future_release(a);
  rill_listener_release(l);
}

}  // namespace
