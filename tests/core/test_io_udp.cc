// UDP endpoints: sendto/recvfrom (awaitable and callback), connect, bad input.
#include <unistd.h>

#include "io_test.h"

using namespace rilltest;

namespace {

class Udp : public IoTest {};

TEST_F(Udp, SendtoAndAwaitRecvfromWithTheSender) {
  rill_udp *a = rill_udp_open(loop, "127.0.0.1", 0, 0);
  rill_udp *b = rill_udp_open(loop, nullptr, 0, 0);
  ASSERT_TRUE(a && b) << rill_last_error_message();
  int pa = rill_udp_port(a), pb = rill_udp_port(b);
  EXPECT_GT(pa, 0);
  EXPECT_EQ(RunMain([&]() -> int {
              rill_future *r1 = rill_udp_recvfrom(b), *r2 = rill_udp_recvfrom(b);
              EXPECT_EQ(rill_udp_sendto(a, "one", 3, "127.0.0.1", pb), RILL_OK);
              EXPECT_EQ(rill_udp_sendto(a, "two", 3, "127.0.0.1", pb), RILL_OK);
              EXPECT_EQ(AwaitBytes(rill_future_retain(r1)), "one");  // FIFO
              EXPECT_EQ(AwaitBytes(rill_future_retain(r2)), "two");
              char sender[64];
              EXPECT_EQ(rill_udp_sender(r1, sender, sizeof sender), RILL_OK);
              EXPECT_EQ(std::string(sender), "127.0.0.1:" + std::to_string(pa));
              rill_future_release(r1);
              rill_future_release(r2);
              // connected: sends without a host go to the peer
              EXPECT_EQ(rill_udp_connect(a, "127.0.0.1", pb), RILL_OK);
              EXPECT_EQ(rill_udp_sendto(a, "three", 5, nullptr, 0), RILL_OK);
              EXPECT_EQ(AwaitBytes(rill_udp_recvfrom(b)), "three");
              return RILL_OK;
            }),
            RILL_OK);
  rill_future *pendingf = rill_udp_recvfrom(b);
  EXPECT_EQ(rill_udp_close(b), RILL_OK);
  EXPECT_EQ(rill_future_error(pendingf), RILL_ENOTCONN);
  rill_future_release(pendingf);
  EXPECT_FAILS_WITH(rill_udp_close(b), RILL_ENOTCONN);
  rill_udp_close(a);
  rill_udp_release(a);
  rill_udp_release(b);
}

struct Seen {
  std::vector<std::string> got;
  rill_loop *loop;
  int frees = 0;
};

TEST_F(Udp, CallbackGetsEachDatagram) {
  rill_udp *a = rill_udp_open(loop, "127.0.0.1", 0, 0);
  rill_udp *b = rill_udp_open(loop, "127.0.0.1", 0, 0);
  Seen seen{{}, loop};
  ASSERT_EQ(rill_udp_set_callback(
                b,
                [](rill_udp *u, const void *d, size_t len, const char *host, int port, void *arg) {
                  Seen *s = static_cast<Seen *>(arg);
                  s->got.push_back(std::string(static_cast<const char *>(d), len) + "@" + host + ":" +
                                   std::to_string(port));
                  if (s->got.size() == 2) rill_udp_close(u);
                },
                &seen, [](void *arg) { static_cast<Seen *>(arg)->frees++; }),
            RILL_OK);
  int pa = rill_udp_port(a);
  rill_udp_sendto(a, "x", 1, "127.0.0.1", rill_udp_port(b));
  rill_udp_sendto(a, "yz", 2, "127.0.0.1", rill_udp_port(b));
  rill_udp_close(a);
  Run();
  std::string from = "@127.0.0.1:" + std::to_string(pa);
  EXPECT_EQ(seen.got, (std::vector<std::string>{"x" + from, "yz" + from}));
  rill_udp_release(a);
  rill_udp_release(b);
  EXPECT_EQ(seen.frees, 1);
}

TEST_F(Udp, BadInput) {
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  EXPECT_NULL_WITH(rill_udp_open(nullptr, nullptr, 0, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_udp_open(closed, nullptr, 0, 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_udp_open(loop, "bad host", 0, 0), RILL_ENOHOST);
  EXPECT_NULL_WITH(rill_udp_open(loop, nullptr, 70000, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_udp_open(loop, nullptr, 0, 0x40), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_udp_connect(nullptr, "127.0.0.1", 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_udp_sendto(nullptr, "x", 1, "127.0.0.1", 1), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_udp_recvfrom(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_udp_set_callback(nullptr, nullptr, nullptr, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_udp_port(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_udp_close(nullptr), RILL_EINVAL);
  rill_udp_release(nullptr);
  char buf[8];
  EXPECT_FAILS_WITH(rill_udp_sender(nullptr, buf, sizeof buf), RILL_EINVAL);
  rill_future *plain = NewFuture();
  EXPECT_FAILS_WITH(rill_udp_sender(plain, buf, sizeof buf), RILL_ETYPE);
  rill_future_release(plain);
  rill_udp *u = rill_udp_open(loop, nullptr, 0, 0);
  EXPECT_FAILS_WITH(rill_udp_sendto(u, nullptr, 1, "127.0.0.1", 9), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_udp_sendto(u, "x", 1, "no.such.host", 9), RILL_ENOHOST);
  EXPECT_FAILS_WITH(rill_udp_sendto(u, "x", 1, "127.0.0.1", 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_udp_sendto(u, "x", 1, nullptr, 0), RILL_ESYS);
  rill_future *r = rill_udp_recvfrom(u);
  EXPECT_FAILS_WITH(rill_udp_sender(r, buf, sizeof buf), RILL_ESTATE);  // not arrived
  rill_udp_close(u);
  EXPECT_FAILS_WITH(rill_udp_port(u), RILL_ENOTCONN);
  EXPECT_NULL_WITH(rill_udp_recvfrom(u), RILL_ENOTCONN);
  rill_future_release(r);
  rill_udp_release(u);
}

TEST_F(Udp, LoopCloseClosesEndpoint) {
  rill_udp *u = rill_udp_open(loop, nullptr, 0, 0);
  rill_future *r = rill_udp_recvfrom(u);
  CloseLoop();
  EXPECT_NE(rill_future_state(r), RILL_PENDING);
  rill_future_release(r);
  rill_udp_release(u);
}

}  // namespace
