// rill.hpp's 1.1 pieces: to_thread, signals, processes, and rill::run's
// SIGINT. Every test ends with its loop closed and nothing left running.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rill.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

struct Point {
  int x;
  std::string label;
};

rill::task<int> add_in_thread(int a, int b) {
  co_return co_await rill::to_thread([a, b] { return a + b; });
}

}  // namespace

TEST(ToThread, ValuesOfEveryKindComeBack) {
  std::thread::id loop_thread = std::this_thread::get_id();
  auto main = [&]() -> rill::task<> {
    std::thread::id worker = co_await rill::to_thread([] { return std::this_thread::get_id(); });
    EXPECT_NE(worker, loop_thread);
    EXPECT_EQ(co_await add_in_thread(2, 3), 5);
    EXPECT_EQ(co_await rill::to_thread([] { return true; }), true);
    EXPECT_EQ(co_await rill::to_thread([] { return 2.5; }), 2.5);
    EXPECT_EQ(co_await rill::to_thread([] { return std::string("text"); }), "text");
    Point p = co_await rill::to_thread([] { return Point{7, "seven"}; });
    EXPECT_EQ(p.x, 7);
    EXPECT_EQ(p.label, "seven");
    int side = 0;
    co_await rill::to_thread([&side] { side = 1; });
    EXPECT_EQ(side, 1);
  };
  rill::run(main());
}

TEST(ToThread, AnExceptionCrossesAsTheSameObject) {
  struct Boom : std::runtime_error {
    int n;
    explicit Boom(int v) : std::runtime_error("boom"), n(v) {}
  };
  auto main = []() -> rill::task<int> {
    try {
      co_await rill::to_thread([]() -> int { throw Boom(42); });
    } catch (const Boom &b) {
      co_return b.n;
    }
    co_return 0;
  };
  EXPECT_EQ(rill::run(main()), 42);
}

TEST(ToThread, ManyJobsRunInParallel) {
  auto main = []() -> rill::task<double> {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<rill::task<int>> jobs;
    for (int i = 0; i < 4; i++)
      jobs.push_back(rill::to_thread([i] {
        std::this_thread::sleep_for(100ms);
        return i;
      }));
    auto results = co_await rill::gather(std::move(jobs));
    EXPECT_EQ(results, (std::vector<int>{0, 1, 2, 3}));
    co_return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double took = rill::run(main());
  EXPECT_LT(took, 0.35) << "4 x 100 ms jobs on a pool of >= 5 threads";
}

TEST(ToThread, CancellingTheAwaiterDropsTheValue) {
  static std::atomic<int> destroyed{0};
  struct Counted {
    Counted() = default;
    Counted(const Counted &) = default;
    ~Counted() { destroyed++; }
  };
  auto main = []() -> rill::task<bool> {
    auto slow = rill::spawn(rill::to_thread([] {
      std::this_thread::sleep_for(50ms);
      return Counted{};
    }));
    co_await rill::sleep(10ms);
    slow.cancel();
    try {
      co_await slow;
    } catch (const rill::cancelled_error &) {
      co_return true;
    }
    co_return false;
  };
  destroyed = 0;
  EXPECT_TRUE(rill::run(main()));
  EXPECT_GE(destroyed.load(), 1) << "the value nobody can read was destroyed";
}

TEST(Signals, WatcherAndWaitSignal) {
  auto main = []() -> rill::task<int> {
    int seen = 0;
    rill::signal_watcher w(rill::current_loop(), SIGUSR1, [&seen](int s) { seen = s; });
    EXPECT_TRUE(w.active());
    std::raise(SIGUSR1);
    co_await rill::sleep(0);
    co_await rill::sleep(0);
    EXPECT_EQ(seen, SIGUSR1);
    w.stop();
    EXPECT_FALSE(w.active());
    std::thread th([] {
      std::this_thread::sleep_for(20ms);
      kill(getpid(), SIGUSR2);
    });
    int got = co_await rill::wait_signal(SIGUSR2);
    th.join();
    co_return got;
  };
  EXPECT_EQ(rill::run(main()), SIGUSR2);
  struct sigaction sa;
  sigaction(SIGUSR2, nullptr, &sa);
  EXPECT_EQ(sa.sa_handler, SIG_DFL) << "restored once the wait ended";
}

TEST(Signals, RunTurnsSigintIntoACancelOfMain) {
  auto main = []() -> rill::task<> {
    std::thread th([] {
      std::this_thread::sleep_for(20ms);
      kill(getpid(), SIGINT);
    });
    th.detach();
    co_await rill::sleep(10s);
  };
  auto t0 = std::chrono::steady_clock::now();
  try {
    rill::run(main());
    ADD_FAILURE() << "run returned";
  } catch (const rill::error &e) {
    EXPECT_EQ(e.code(), RILL_EINTR);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

// The same with the SIGINT sent by another process, within 50 ms of it.
TEST(Signals, ASigintFromAChildProcessCancelsMainWithin50ms) {
  int go[2], sent[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(sent), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(go[1]);
    close(sent[0]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(2);
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, nullptr);
    auto t = std::chrono::steady_clock::now();
    kill(getppid(), SIGINT);
    _exit(write(sent[1], &t, sizeof t) == sizeof t ? 0 : 3);
  }
  close(go[0]);
  close(sent[1]);
  std::chrono::steady_clock::time_point seen{};
  bool cancelled = false;
  auto main = [&]() -> rill::task<> {
    if (write(go[1], "g", 1) != 1) throw std::runtime_error("pipe");
    try {
      co_await rill::sleep(10s);
    } catch (const rill::error &e) {
      seen = std::chrono::steady_clock::now();
      cancelled = e.code() == RILL_ECANCELLED;
      throw;
    }
  };
  int code = 0;
  try {
    rill::run(main());
  } catch (const rill::error &e) {
    code = e.code();
  }
  std::chrono::steady_clock::time_point t_sent{};
  EXPECT_EQ(read(sent[0], &t_sent, sizeof t_sent), (ssize_t)sizeof t_sent);
  close(sent[0]);
  close(go[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(code, RILL_EINTR);
  EXPECT_TRUE(cancelled) << "main saw the cancel at its await point";
  EXPECT_GE(seen, t_sent);
  const char *slack = std::getenv("RILL_TEST_LATE_SLACK");
  auto bound = slack && std::atof(slack) > 1 ? std::chrono::duration<double>(std::atof(slack) / 3)
                                             : std::chrono::duration<double>(0.05);
  EXPECT_LT(seen - t_sent, bound);
}

TEST(Processes, SpawnReadAndWait) {
  auto main = []() -> rill::task<std::string> {
    rill::process::options o;
    o.stdio[1] = RILL_STDIO_PIPE;
    o.cwd = "/";
    auto p = rill::process::spawn({"sh", "-c", "pwd; exit 3"}, o);
    EXPECT_GT(p.pid(), 0);
    int code = co_await p.wait();
    EXPECT_EQ(code, 3);
    EXPECT_EQ(p.returncode(), 3);
    std::string out;
    char buf[256];
    ssize_t n;
    while ((n = read(p.fd(1), buf, sizeof buf)) > 0) out.append(buf, (size_t)n);
    co_return out;
  };
  EXPECT_EQ(rill::run(main()), "/\n");
}

TEST(Processes, KillAndErrors) {
  auto main = []() -> rill::task<int> {
    auto p = rill::process::spawn({"sleep", "10"});
    EXPECT_FALSE(p.returncode().has_value());
    p.kill();
    int code = co_await p.wait();
    EXPECT_THROW(p.kill(), rill::error);
    co_return code;
  };
  EXPECT_EQ(rill::run(main()), -SIGKILL);
  rill::loop l;
  EXPECT_THROW(rill::process::spawn({}, {}, l.native()), rill::error);
}
