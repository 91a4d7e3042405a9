// Batched reads and sends (core/src/uring.c): an iteration's reads of ready
// sockets, and its coalesced writes, each go in one io_uring_enter. What
// users see must not change: every stream's bytes in order, a full socket
// waiting for EV_WRITE, a dead peer failing the stream, reads of many
// streams each getting their own bytes, and the same with the ring off
// (RILL_IO_URING=0) or in a forked child (whose ring is the parent's).
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "io_test.h"

using namespace rilltest;

namespace {

// The io_uring fds this process has open (0 when no loop made a ring).
int CountRings() {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (struct dirent *e = readdir(d)) {
    char path[300], target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(path, target, sizeof target - 1);
    if (len > 0) {
      target[len] = 0;
      if (strstr(target, "io_uring")) n++;
    }
  }
  closedir(d);
  return n;
}

std::string Drain(int fd) {
  std::string got;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0;) got.append(buf, (size_t)n);
  return got;
}

class Batch : public IoTest {
 protected:
  struct Pair {
    rill_stream *s = nullptr;
    int peer = -1;
  };
  std::vector<Pair> pairs;

  void Open(int n, int sndbuf = 0, rill_loop *on = nullptr) {
    for (int i = 0; i < n; i++) {
      int fds[2];
      ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
      if (sndbuf) setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      Pair p;
      p.s = rill_stream_open_fd(on ? on : loop, fds[0]);
      ASSERT_NE(p.s, nullptr);
      ASSERT_EQ(rill_stream_set_coalesce_writes(p.s, 1), RILL_OK);
      p.peer = fds[1];
      pairs.push_back(p);
    }
  }
  void TearDown() override {
    for (Pair &p : pairs) {
      rill_stream_abort(p.s);
      rill_stream_release(p.s);
      close(p.peer);
    }
    pairs.clear();
    IoTest::TearDown();
  }
  // Each stream writes "i:a;" then "i:b;" from callbacks of one batch.
  void WriteFromOneBatch(rill_loop *on = nullptr) {
    struct W {
      rill_stream *s;
      std::string text;
    };
    static std::vector<W> ws;
    ws.clear();
    for (size_t i = 0; i < pairs.size(); i++) {
      ws.push_back({pairs[i].s, std::to_string(i) + ":a;"});
      ws.push_back({pairs[i].s, std::to_string(i) + ":b;"});
    }
    for (W &w : ws)
      rill_handle_release(rill_call_soon(
          on ? on : loop,
          [](void *arg) {
            W *w = static_cast<W *>(arg);
            EXPECT_EQ(rill_stream_write(w->s, w->text.data(), w->text.size()), RILL_OK);
          },
          &w, nullptr));
  }
};

// 40 streams written in one iteration: after that one run_once every peer
// holds its own bytes, in order, and the loop made its ring.
TEST_F(Batch, OneIterationsWritesReachEveryPeerInOrder) {
  Open(40);
  WriteFromOneBatch();
  EXPECT_GE(rill_loop_run_once(loop, 0), 0);
  for (size_t i = 0; i < pairs.size(); i++) {
    EXPECT_EQ(rill_stream_write_buffered(pairs[i].s), 0);
    EXPECT_EQ(Drain(pairs[i].peer), std::to_string(i) + ":a;" + std::to_string(i) + ":b;");
  }
  EXPECT_EQ(CountRings(), 1) << "the iteration's sends did not go through io_uring";
}

// 30 streams become readable together: one run_once reads them all (one
// group), and each pending read gets its own stream's bytes; a peer that
// closed gives its reader EOF in the same group.
TEST_F(Batch, ReadsOfManyStreamsInOneIterationEachGetTheirOwnBytes) {
  Open(30);
  std::vector<rill_future *> reads;
  for (Pair &p : pairs) reads.push_back(rill_stream_read(p.s, 4096));
  for (size_t i = 0; i < pairs.size(); i++) {
    if (i % 10 == 9) {
      shutdown(pairs[i].peer, SHUT_WR);
    } else {
      std::string text = "stream " + std::to_string(i);
      ASSERT_EQ(send(pairs[i].peer, text.data(), text.size(), 0), (ssize_t)text.size());
    }
  }
  EXPECT_GE(rill_loop_run_once(loop, 1), 0);
  for (size_t i = 0; i < pairs.size(); i++) {
    ASSERT_EQ(rill_future_state(reads[i]), RILL_DONE) << "stream " << i;
    size_t len = 0;
    const void *p = rill_future_bytes(reads[i], &len);
    std::string got(static_cast<const char *>(p), len);
    EXPECT_EQ(got, i % 10 == 9 ? "" : "stream " + std::to_string(i));
    EXPECT_EQ(rill_stream_at_eof(pairs[i].s), i % 10 == 9 ? 1 : 0);
    rill_future_release(reads[i]);
  }
  EXPECT_EQ(CountRings(), 1) << "the iteration's reads did not go through io_uring";
}

// The callback face (the loop's transports): one iteration's reads of
// many streams land in slots of the loop's read arena, one group; each
// callback gets its own stream's bytes, and EOF where the peer shut down.
struct Seen {
  std::string data;
  int eofs = 0, calls = 0;
  rill_stream *other = nullptr; // acted on from this stream's callback
  int act = 0;                  // 1 pause other, 2 close other, 3 drop other's callback
  Seen *partner = nullptr;      // the other's record: it must not act back
};

int Record(rill_stream *, int event, const void *data, size_t len, int, void *arg) {
  Seen *seen = static_cast<Seen *>(arg);
  seen->calls++;
  if (event == RILL_STREAM_DATA) seen->data.append(static_cast<const char *>(data), len);
  if (event == RILL_STREAM_EOF) seen->eofs++;
  if (seen->other && seen->act == 1) {
    EXPECT_EQ(rill_stream_pause_reading(seen->other), RILL_OK);
  }
  if (seen->other && seen->act == 2) rill_stream_abort(seen->other);
  if (seen->other && seen->act == 3) {
    EXPECT_EQ(rill_stream_set_callback(seen->other, nullptr, nullptr, nullptr), RILL_OK);
  }
  seen->other = nullptr;
  if (seen->partner) seen->partner->other = nullptr;
  return 1;
}

TEST_F(Batch, CallbackReadsOfManyStreamsEachGetTheirOwnBytes) {
  Open(30);
  std::vector<Seen> seen(pairs.size());
  for (size_t i = 0; i < pairs.size(); i++)
    ASSERT_EQ(rill_stream_set_callback(pairs[i].s, Record, &seen[i], nullptr), RILL_OK);
  for (size_t i = 0; i < pairs.size(); i++) {
    if (i % 10 == 9) {
      shutdown(pairs[i].peer, SHUT_WR);
    } else {
      std::string text = "stream " + std::to_string(i) + std::string(i * 100, 'x');
      ASSERT_EQ(send(pairs[i].peer, text.data(), text.size(), 0), (ssize_t)text.size());
    }
  }
  EXPECT_GE(rill_loop_run_once(loop, 1), 0);
  for (size_t i = 0; i < pairs.size(); i++) {
    EXPECT_EQ(seen[i].data, i % 10 == 9 ? "" : "stream " + std::to_string(i) + std::string(i * 100, 'x'))
        << "stream " << i;
    EXPECT_EQ(seen[i].eofs, i % 10 == 9 ? 1 : 0) << "stream " << i;
  }
  EXPECT_EQ(CountRings(), 1) << "the callback face's reads did not go through io_uring";
  // The next iteration's group reuses the arena: still each its own bytes.
  for (size_t i = 0; i < pairs.size(); i++)
    if (i % 10 != 9) {
      ASSERT_EQ(send(pairs[i].peer, "!", 1, 0), 1);
    }
  EXPECT_GE(rill_loop_run_once(loop, 1), 0);
  for (size_t i = 0; i < pairs.size(); i++)
    if (i % 10 != 9) {
      EXPECT_EQ(seen[i].data.back(), '!') << "stream " << i;
    }
}

// More streams ready at once than the arena has slots (4 MiB at 4 KiB and
// a line each: 1008): the rest read by themselves, into the loop's shared
// buffer, in the same iteration; every stream gets its own bytes. (libev
// takes up to 64 events per poll at first and doubles that when a poll
// fills it, so the first rounds warm it up until one iteration sees all.)
TEST_F(Batch, MoreCallbackReadsThanArenaSlotsStillEachGetTheirOwn) {
  const int n = 1100;
  struct rlimit rl;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rlim_t want = 2 * n + 64;
  if (rl.rlim_cur < want) {
    if (rl.rlim_max < want) GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << rl.rlim_max;
    struct rlimit up = rl;
    up.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &up) != 0) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE (valgrind?)";
  }
  Open(n);
  std::vector<Seen> seen(pairs.size());
  std::vector<std::string> sent(pairs.size());
  for (size_t i = 0; i < pairs.size(); i++)
    ASSERT_EQ(rill_stream_set_callback(pairs[i].s, Record, &seen[i], nullptr), RILL_OK);
  bool all_in_one = false;
  for (int round = 0; round < 6 && !all_in_one; round++) {
    for (size_t i = 0; i < pairs.size(); i++) {
      std::string text = std::to_string(round) + ":" + std::to_string(i) + ";";
      ASSERT_EQ(send(pairs[i].peer, text.data(), text.size(), 0), (ssize_t)text.size());
      sent[i] += text;
    }
    for (int it = 0; it < 50; it++) {
      EXPECT_GE(rill_loop_run_once(loop, 1), 0);
      int got = 0;
      for (size_t i = 0; i < pairs.size(); i++) got += seen[i].data.size() == sent[i].size();
      if (it == 0 && got == n) all_in_one = true;
      if (got == n) break;
    }
    int wrong = 0;
    for (size_t i = 0; i < pairs.size(); i++) wrong += seen[i].data != sent[i];
    ASSERT_EQ(wrong, 0) << "round " << round << ": streams without exactly their own bytes";
  }
  EXPECT_TRUE(all_in_one) << "no iteration read all " << n << " streams";
  EXPECT_EQ(CountRings(), 1);
  TearDown();
  setrlimit(RLIMIT_NOFILE, &rl);
}

// A lone stream's batched read is as large as the direct path's (256 KiB):
// what the peer wrote comes in one callback.
TEST_F(Batch, ALoneCallbackReadTakesAllThatIsThere) {
  Open(1);
  int big = 1 << 20;
  setsockopt(pairs[0].peer, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  Seen seen;
  ASSERT_EQ(rill_stream_set_callback(pairs[0].s, Record, &seen, nullptr), RILL_OK);
  std::string text(150000, 'q');
  ASSERT_EQ(send(pairs[0].peer, text.data(), text.size(), 0), (ssize_t)text.size());
  EXPECT_GE(rill_loop_run_once(loop, 1), 0);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.data.size(), text.size());
}

// Streams read in one group, where the first callback pauses, aborts or
// drops the callback of the other stream, whose bytes were already read:
// a paused stream keeps them and hands them over on resume (with nothing
// new from the peer), an aborted one drops them, one without a callback
// gives them to the awaitable face. (Which of the two runs first is the
// poller's order: each is set to act on the other.)
TEST_F(Batch, ACallbackActingOnAStreamReadInTheSameGroup) {
  for (int act = 1; act <= 3; act++) {
    SCOPED_TRACE("act " + std::to_string(act));
    Open(2);
    Pair p[2] = {pairs[pairs.size() - 2], pairs[pairs.size() - 1]};
    Seen seen[2];
    for (int i = 0; i < 2; i++) {
      seen[i].other = p[1 - i].s;
      seen[i].act = act;
      seen[i].partner = &seen[1 - i];
      ASSERT_EQ(rill_stream_set_callback(p[i].s, Record, &seen[i], nullptr), RILL_OK);
    }
    ASSERT_EQ(send(p[0].peer, "to 0", 4, 0), 4);
    ASSERT_EQ(send(p[1].peer, "to 1", 4, 0), 4);
    EXPECT_GE(rill_loop_run_once(loop, 1), 0);
    ASSERT_EQ(seen[0].calls + seen[1].calls, 1) << "a read made before the act reached the stream acted on";
    int first = seen[0].calls ? 0 : 1, second = 1 - first;
    EXPECT_EQ(seen[first].data, "to " + std::to_string(first));
    Pair b = p[second];
    Seen &sb = seen[second];
    if (act == 1) {
      ASSERT_EQ(send(b.peer, " and", 4, 0), 4);
      EXPECT_GE(rill_loop_run_once(loop, 0), 0);
      EXPECT_EQ(sb.calls, 0) << "a paused stream got bytes";
      ASSERT_EQ(rill_stream_resume_reading(b.s), RILL_OK);
      EXPECT_GE(rill_loop_run_once(loop, 1), 0);
      EXPECT_GE(rill_loop_run_once(loop, 0), 0);
      EXPECT_EQ(sb.data, "to " + std::to_string(second) + " and");
    } else if (act == 2) {
      EXPECT_EQ(rill_stream_is_closing(b.s), 1);
      EXPECT_GE(rill_loop_run_once(loop, 0), 0);
      EXPECT_EQ(sb.data, "") << "an aborted stream's read bytes reached its callback";
    } else {
      rill_future *r = rill_stream_read(b.s, 100);
      ASSERT_NE(r, nullptr);
      EXPECT_GE(rill_loop_run_once(loop, 0), 0);
      ASSERT_EQ(rill_future_state(r), RILL_DONE);
      size_t len = 0;
      const void *bytes = rill_future_bytes(r, &len);
      EXPECT_EQ(std::string(static_cast<const char *>(bytes), len), "to " + std::to_string(second));
      rill_future_release(r);
    }
  }
  EXPECT_EQ(CountRings(), 1);
}

// What a small socket buffer does not take waits for EV_WRITE: the bytes
// arrive whole and in order as the peers read, and drain completes.
TEST_F(Batch, APartialSendFinishesThroughTheWriteWatcher) {
  Open(3, 4096);
  std::string big(60000, 0);
  for (size_t i = 0; i < big.size(); i++) big[i] = (char)('a' + i % 26);
  std::vector<std::string> got(pairs.size());
  EXPECT_EQ(RunMain([&]() -> int {
              for (Pair &p : pairs) EXPECT_EQ(rill_stream_write(p.s, big.data(), big.size()), RILL_OK);
              EXPECT_EQ(AwaitRc(rill_sleep_future(loop, 0)), RILL_OK);
              size_t waiting = 0;
              for (Pair &p : pairs) waiting += rill_stream_write_buffered(p.s) > 0;
              EXPECT_EQ(waiting, pairs.size()) << "a 4 KiB socket took 60,000 bytes at once";
              for (int round = 0; round < 2000; round++) {
                bool all = true;
                for (size_t i = 0; i < pairs.size(); i++) {
                  got[i] += Drain(pairs[i].peer);
                  all = all && got[i].size() >= big.size();
                }
                if (all) break;
                AwaitRc(rill_sleep_future(loop, 0.001));
              }
              for (Pair &p : pairs) EXPECT_EQ(AwaitRc(rill_stream_drain(p.s)), RILL_OK);
              return RILL_OK;
            }),
            RILL_OK);
  for (size_t i = 0; i < pairs.size(); i++) EXPECT_EQ(got[i], big) << "stream " << i;
}

// A socket already full gets EAGAIN from the batch; its bytes go when the
// peer reads.
TEST_F(Batch, AFullSocketWaitsForThePeer) {
  Open(1, 4096);
  int fd = rill_stream_fd(pairs[0].s);
  ASSERT_GE(fd, 0);
  std::string filler;
  char chunk[4096] = {0};
  for (ssize_t n; (n = send(fd, chunk, sizeof chunk, MSG_DONTWAIT)) > 0;) filler.append(chunk, (size_t)n);
  EXPECT_EQ(RunMain([&]() -> int {
              EXPECT_EQ(rill_stream_write(pairs[0].s, "after", 5), RILL_OK);
              EXPECT_EQ(AwaitRc(rill_sleep_future(loop, 0)), RILL_OK);
              EXPECT_EQ(rill_stream_write_buffered(pairs[0].s), 5);  // refused, kept
              std::string got;
              for (int i = 0; i < 2000 && got.size() < filler.size() + 5; i++) {
                got += Drain(pairs[0].peer);
                AwaitRc(rill_sleep_future(loop, 0.001));
              }
              EXPECT_EQ(got.size(), filler.size() + 5);
              EXPECT_EQ(got.substr(filler.size()), "after");
              return RILL_OK;
            }),
            RILL_OK);
}

// A peer gone before the batch leaves: the send's error fails the stream
// (closed, a later write names the failure), as a direct send's would.
TEST_F(Batch, ADeadPeerFailsTheStream) {
  Open(2);
  close(pairs[1].peer);
  pairs[1].peer = -1;
  EXPECT_EQ(RunMain([&]() -> int {
              EXPECT_EQ(rill_stream_write(pairs[0].s, "ok", 2), RILL_OK);
              EXPECT_EQ(rill_stream_write(pairs[1].s, "lost", 4), RILL_OK);
              EXPECT_EQ(AwaitRc(rill_sleep_future(loop, 0)), RILL_OK);
              EXPECT_EQ(rill_stream_is_closing(pairs[1].s), 1);
              int rc = rill_stream_write(pairs[1].s, "more", 4);  // the failure, named
              EXPECT_TRUE(rc == RILL_EPIPE || rc == RILL_ECONNRESET) << rill_err_name(rc);
              EXPECT_EQ(AwaitRc(rill_stream_wait_closed(pairs[1].s)), RILL_OK);
              return RILL_OK;
            }),
            RILL_OK);
  EXPECT_EQ(Drain(pairs[0].peer), "ok");  // the other send of the batch went
}

// RILL_IO_URING=0: no ring, the same bytes (each stream sends by itself).
TEST_F(Batch, WithTheRingOffTheSameBytesArrive) {
  setenv("RILL_IO_URING", "0", 1);  // read when the loop is made
  rill_loop *off = rill_loop_new();
  unsetenv("RILL_IO_URING");
  ASSERT_NE(off, nullptr);
  Open(5, 0, off);
  WriteFromOneBatch(off);
  EXPECT_GE(rill_loop_run_once(off, 0), 0);
  for (size_t i = 0; i < pairs.size(); i++)
    EXPECT_EQ(Drain(pairs[i].peer), std::to_string(i) + ":a;" + std::to_string(i) + ":b;");
  EXPECT_EQ(CountRings(), 0);
  for (Pair &p : pairs) {
    rill_stream_release(p.s);  // the loop's close closes them
    close(p.peer);
  }
  pairs.clear();
  EXPECT_EQ(rill_loop_close(off), RILL_OK);
  rill_loop_free(off);
}

// A child forked after the loop made its ring does not use it (the ring is
// shared with the parent): its writes still arrive, and so do the parent's.
TEST_F(Batch, AForkedChildSendsWithoutTheParentsRing) {
  Open(2);
  WriteFromOneBatch();
  EXPECT_GE(rill_loop_run_once(loop, 0), 0);
  ASSERT_EQ(CountRings(), 1);
  EXPECT_EQ(Drain(pairs[0].peer), "0:a;0:b;");
  EXPECT_EQ(Drain(pairs[1].peer), "1:a;1:b;");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // two sends: a group the parent's loop would batch
    int ok = rill_stream_write(pairs[0].s, "child", 5) == RILL_OK &&
             rill_stream_write(pairs[1].s, "child", 5) == RILL_OK;
    ok = ok && rill_loop_run_once(loop, 0) >= 0 && rill_stream_write_buffered(pairs[0].s) == 0 &&
         rill_stream_write_buffered(pairs[1].s) == 0;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (Pair &p : pairs) {
    char buf[16];
    ssize_t n = recv(p.peer, buf, sizeof buf, 0);
    EXPECT_EQ(n > 0 ? std::string(buf, (size_t)n) : "<none>", "child");
  }
  // The parent's ring still works after the child used the loop.
  EXPECT_EQ(rill_stream_write(pairs[1].s, "parent", 6), RILL_OK);
  EXPECT_GE(rill_loop_run_once(loop, 0), 0);
  EXPECT_EQ(Drain(pairs[1].peer), "parent");
}

}  // namespace
