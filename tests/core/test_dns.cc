// DNS on the thread pool: rill_getaddrinfo / rill_getnameinfo. No test
// needs the network: numeric addresses, "localhost" from /etc/hosts, and
// names that cannot exist (.invalid).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "rill_test.h"
#include "sys_test.h"

using namespace rilltest;

namespace {
class Dns : public RillTest {
 protected:
  ResourceSnapshot before;
  void TearDown() override {
    RillTest::TearDown();
    before.ExpectSame("after the test");
  }
  struct addrinfo Hints(int flags, int family = AF_UNSPEC, int socktype = SOCK_STREAM) {
    struct addrinfo h;
    memset(&h, 0, sizeof h);
    h.ai_flags = flags;
    h.ai_family = family;
    h.ai_socktype = socktype;
    return h;
  }
};
}  // namespace

TEST_F(Dns, NumericIPv4AddressAndPort) {
  struct addrinfo h = Hints(AI_NUMERICHOST | AI_NUMERICSERV);
  rill_future *f = rill_getaddrinfo(loop, "127.0.0.1", "8080", &h);
  ASSERT_NE(f, nullptr) << rill_last_error_message();
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
  const struct addrinfo *ai = rill_future_addrinfo(f);
  ASSERT_NE(ai, nullptr);
  ASSERT_EQ(ai->ai_family, AF_INET);
  auto *sin = reinterpret_cast<const struct sockaddr_in *>(ai->ai_addr);
  EXPECT_EQ(ntohs(sin->sin_port), 8080);
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
  EXPECT_EQ(ai->ai_socktype, SOCK_STREAM);
  rill_future_release(f);
}

TEST_F(Dns, NumericIPv6Address) {
  struct addrinfo h = Hints(AI_NUMERICHOST);
  rill_future *f = rill_getaddrinfo(loop, "::1", nullptr, &h);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
  const struct addrinfo *ai = rill_future_addrinfo(f);
  ASSERT_NE(ai, nullptr);
  EXPECT_EQ(ai->ai_family, AF_INET6);
  rill_future_release(f);
}

TEST_F(Dns, LocalhostResolvesFromACoroutine) {
  int family = -1;
  EXPECT_EQ(RunMain([&] {
              struct addrinfo h = Hints(0);
              rill_future *f = rill_getaddrinfo(loop, "localhost", "http", &h);
              int rc = rill_await(f);
              if (rc == RILL_OK) family = rill_future_addrinfo(f)->ai_family;
              rill_future_release(f);
              return rc;
            }),
            RILL_OK);
  EXPECT_TRUE(family == AF_INET || family == AF_INET6) << family;
}

TEST_F(Dns, NotAnAddressIsNoSuchHostNamingIt) {
  struct addrinfo h = Hints(AI_NUMERICHOST);
  rill_future *f = rill_getaddrinfo(loop, "not-an-address", "80", &h);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_ENOHOST);
  EXPECT_THAT(rill_future_error_message(f), ::testing::HasSubstr("not-an-address"));
  EXPECT_EQ(rill_future_addrinfo(f), nullptr);
  EXPECT_STREQ(rill_err_name(RILL_ENOHOST), "RILL_ENOHOST");
  EXPECT_STREQ(rill_strerror(RILL_ENOHOST), "no such host");
  rill_future_release(f);
}

TEST_F(Dns, ANameThatCannotExistFailsWithANamedCode) {
  rill_future *f = rill_getaddrinfo(loop, "does-not-exist.invalid", nullptr, nullptr);
  ASSERT_NE(f, nullptr);
  int rc = rill_loop_run_until(loop, f);
  // No such host; or, on a machine with no resolver at all, resolution failed.
  EXPECT_TRUE(rc == RILL_ENOHOST || rc == RILL_EDNS) << rill_err_name(rc);
  EXPECT_THAT(rill_future_error_message(f), ::testing::HasSubstr("does-not-exist.invalid"));
  rill_future_release(f);
}

TEST_F(Dns, UnknownServiceFailsWithANamedCode) {
  struct addrinfo h = Hints(AI_NUMERICHOST);
  rill_future *f = rill_getaddrinfo(loop, "127.0.0.1", "no-such-service-rill", &h);
  ASSERT_NE(f, nullptr);
  int rc = rill_loop_run_until(loop, f);
  EXPECT_TRUE(rc == RILL_EDNS || rc == RILL_ENOHOST) << rill_err_name(rc);
  EXPECT_THAT(rill_future_error_message(f), ::testing::HasSubstr("no-such-service-rill"));
  rill_future_release(f);
}

TEST_F(Dns, NameinfoOfALoopbackAddress) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(443);
  sin.sin_addr.s_addr = htonl(0x7f000001u);
  rill_future *f = rill_getnameinfo(loop, reinterpret_cast<struct sockaddr *>(&sin), sizeof sin,
                                    NI_NUMERICHOST | NI_NUMERICSERV);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
  const char *host = nullptr, *service = nullptr;
  ASSERT_EQ(rill_future_nameinfo(f, &host, &service), RILL_OK);
  EXPECT_STREQ(host, "127.0.0.1");
  EXPECT_STREQ(service, "443");
  rill_future_release(f);
}

TEST_F(Dns, CancelDropsTheResult) {
  // Cancelled at once (queued or running): the future is CANCELLED and the
  // list the resolver returns is freed by the pool (valgrind checks it).
  rill_future *f[4];
  for (auto &x : f) x = rill_getaddrinfo(loop, "localhost", "80", nullptr);
  for (auto *x : f) EXPECT_EQ(rill_future_cancel(x), 1);
  for (auto *x : f) EXPECT_EQ(rill_future_state(x), RILL_CANCELLED);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);
  for (auto *x : f) EXPECT_EQ(rill_future_addrinfo(x), nullptr);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Dns, BadInput) {
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  EXPECT_NULL_WITH(rill_getaddrinfo(nullptr, "localhost", nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_getaddrinfo(closed, "localhost", nullptr, nullptr), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_getaddrinfo(loop, nullptr, nullptr, nullptr), RILL_EINVAL);
  struct addrinfo h = Hints(0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  h.ai_addr = reinterpret_cast<struct sockaddr *>(&sin);
  EXPECT_NULL_WITH(rill_getaddrinfo(loop, "localhost", nullptr, &h), RILL_EINVAL);
  auto *sa = reinterpret_cast<struct sockaddr *>(&sin);
  EXPECT_NULL_WITH(rill_getnameinfo(nullptr, sa, sizeof sin, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_getnameinfo(closed, sa, sizeof sin, 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_getnameinfo(loop, nullptr, sizeof sin, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_getnameinfo(loop, sa, 0, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_getnameinfo(loop, sa, 4096, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_future_addrinfo(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_nameinfo(nullptr, nullptr, nullptr), RILL_EINVAL);
  rill_future *plain = NewFuture();
  EXPECT_EQ(rill_future_addrinfo(plain), nullptr);
  EXPECT_FAILS_WITH(rill_future_nameinfo(plain, nullptr, nullptr), RILL_ESTATE);
  rill_future_set_int(plain, 1);
  EXPECT_FAILS_WITH(rill_future_nameinfo(plain, nullptr, nullptr), RILL_ETYPE);
  rill_future_release(plain);
  // A getaddrinfo result is not a getnameinfo one, and the reverse.
  struct addrinfo n = Hints(AI_NUMERICHOST);
  rill_future *f = rill_getaddrinfo(loop, "127.0.0.1", nullptr, &n);
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
  EXPECT_FAILS_WITH(rill_future_nameinfo(f, nullptr, nullptr), RILL_ETYPE);
  rill_future_release(f);
}
