// Task groups (asyncio.TaskGroup). (asyncio group J)
#include "rill_test.h"

using namespace rilltest;
using ::testing::UnorderedElementsAre;


static const std::string kCancelled = std::to_string(RILL_ECANCELLED);
static const std::string kEGroup = std::to_string(RILL_EGROUP);

class GroupTest : public RillTest {
 protected:
  // A child that sleeps secs, logs, and returns code (or the sleep's code).
  rill_task *Child(rill_group *g, const std::string &name, double secs, int code = 0) {
    rill_task *t = rill_group_spawn(g, CoroRun, NewCoro([this, name, secs, code] {
                                      int rc = rill_sleep(secs);
                                      log.push_back(name + " got " + std::to_string(rc));
                                      return rc < 0 && code == 0 ? rc : code;
                                    }));
    EXPECT_NE(t, nullptr) << rill_last_error_message();
    return t;
  }
};

TEST_F(GroupTest, WaitsForEveryChild) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              EXPECT_NE(g, nullptr);
              rill_task *c[] = {Child(g, "c1", 0.03), Child(g, "c2", 0.01), Child(g, "c3", 0.02)};
              int rc = rill_group_wait(g, RILL_OK);
              log.push_back("group gave " + std::to_string(rc));
              EXPECT_EQ(rill_group_count(g), 3u);
              for (size_t i = 0; i < 3; i++) {
                EXPECT_EQ(rill_group_child(g, i), c[i]) << "in order added";
                EXPECT_EQ(rill_future_state(rill_task_future(c[i])), RILL_DONE);
              }
              EXPECT_EQ(rill_group_child(g, 3), nullptr);
              EXPECT_EQ(rill_group_error_count(g), 0u);
              for (auto *t : c) rill_task_release(t);
              rill_group_release(g);
              return rc;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"c2 got 0", "c3 got 0", "c1 got 0", "group gave 0"}));
}

TEST_F(GroupTest, FirstFailureCancelsTheSiblingsAndTheParentBody) {
  double t0 = MonoNow();
  rill_task *c1 = nullptr;
  EXPECT_EQ(RunMain([&] {
              rill_task *self = rill_current_task();
              rill_group *g = rill_group_new(loop, self);
              c1 = Child(g, "c1", 0.01, -1000);
              rill_task *c2 = Child(g, "c2", 10.0);
              int rc = rill_sleep(10.0);  // the body
              log.push_back("body got " + std::to_string(rc));
              rc = rill_group_wait(g, rc);
              log.push_back("group gave " + std::to_string(rc));
              EXPECT_EQ(rill_group_error_count(g), 1u);
              EXPECT_EQ(rill_group_error_child(g, 0), c1);
              EXPECT_EQ(rill_group_error_child(g, 1), nullptr);
              EXPECT_EQ(rill_future_state(rill_task_future(c2)), RILL_CANCELLED);
              EXPECT_EQ(rill_task_cancelling(self), 0) << "the group undid its cancel of the parent";
              EXPECT_EQ(rill_sleep(0.001), RILL_OK);
              EXPECT_EQ(rill_future_error(rill_task_future(c1)), -1000);
              rill_task_release(c2);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
  EXPECT_LT(MonoNow() - t0, 1.0);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0], "c1 got 0");
  EXPECT_THAT((std::vector<std::string>{log[1], log[2]}),
              UnorderedElementsAre("c2 got " + kCancelled, "body got " + kCancelled));
  EXPECT_EQ(log[3], "group gave " + kEGroup);
  rill_task_release(c1);
}

TEST_F(GroupTest, FinishGivesEGroupWithTheFailedChildrenInFailureOrder) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *a = Child(g, "a", 10.0, -1001);  // fails when cancelled
              rill_task *b = Child(g, "b", 0.01, -1002);  // fails first
              rill_task *c = Child(g, "c", 10.0);         // ends cancelled
              int rc = rill_group_wait(g, RILL_OK);
              log.push_back("group gave " + std::to_string(rc));
              EXPECT_EQ(rill_group_error_count(g), 2u);
              EXPECT_EQ(rill_group_error_child(g, 0), b);
              EXPECT_EQ(rill_group_error_child(g, 1), a);
              EXPECT_EQ(rill_future_state(rill_task_future(c)), RILL_CANCELLED);
              EXPECT_EQ(rill_future_error(rill_task_future(a)), -1001);
              EXPECT_EQ(rill_future_error(rill_task_future(b)), -1002);
              for (auto *t : {a, b, c}) rill_task_release(t);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0], "b got 0");
  EXPECT_THAT((std::vector<std::string>{log[1], log[2]}),
              UnorderedElementsAre("a got " + kCancelled, "c got " + kCancelled));
  EXPECT_EQ(log[3], "group gave " + kEGroup);
}

TEST_F(GroupTest, BodyFailureCancelsTheChildren) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *a = Child(g, "a", 10.0);
              rill_task *b = Child(g, "b", 10.0);
              EXPECT_EQ(rill_yield(), RILL_OK);  // children started
              int rc = rill_group_wait(g, -1005);
              log.push_back("group gave " + std::to_string(rc));
              EXPECT_EQ(rill_group_error_count(g), 0u) << "only failed children are listed";
              EXPECT_EQ(rill_future_state(rill_task_future(a)), RILL_CANCELLED);
              EXPECT_EQ(rill_future_state(rill_task_future(b)), RILL_CANCELLED);
              rill_task_release(a);
              rill_task_release(b);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"a got " + kCancelled, "b got " + kCancelled,
                                           "group gave " + kEGroup}));
}

TEST_F(GroupTest, ExternalCancelOfTheParentCancelsTheChildrenAndGivesECancelled) {
  rill_task *parent = Spawn([&] {
    rill_group *g = rill_group_new(loop, rill_current_task());
    rill_task *a = Child(g, "a", 10.0);
    rill_task *b = Child(g, "b", 10.0);
    int rc = rill_group_wait(g, RILL_OK);
    log.push_back("group gave " + std::to_string(rc));
    EXPECT_EQ(rill_group_error_count(g), 0u);
    rill_task_release(a);
    rill_task_release(b);
    rill_group_release(g);
    return rc;
  });
  Later(0.02, [&] { EXPECT_EQ(rill_task_cancel(parent, "outside"), 1); });
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(parent)), RILL_ECANCELLED);
  EXPECT_LT(MonoNow() - t0, 1.0);
  EXPECT_EQ(log, (std::vector<std::string>{"a got " + kCancelled, "b got " + kCancelled,
                                           "group gave " + kCancelled}));
  EXPECT_EQ(rill_future_state(rill_task_future(parent)), RILL_CANCELLED);
  rill_task_release(parent);
}

TEST_F(GroupTest, AChildCancelledFromOutsideIsNotAFailure) {
  rill_task *victim = nullptr;
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              victim = Child(g, "victim", 10.0);
              rill_task *other = Child(g, "other", 0.03);
              Later(0.01, [&] { rill_task_cancel(victim, nullptr); });
              int rc = rill_group_wait(g, RILL_OK);
              log.push_back("group gave " + std::to_string(rc));
              EXPECT_EQ(rill_group_error_count(g), 0u);
              rill_task_release(other);
              rill_group_release(g);
              return rc;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"victim got " + kCancelled, "other got 0", "group gave 0"}));
  rill_task_release(victim);
}

TEST_F(GroupTest, AddAfterFinishIsEStateAndCancelsTheChild) {
  rill_task *late = nullptr;
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *a = Child(g, "a", 0.001);
              EXPECT_EQ(rill_group_wait(g, RILL_OK), RILL_OK);
              late = Spawn([this] {
                log.push_back("late child body ran");
                return 0;
              });
              EXPECT_FAILS_WITH(rill_group_add(g, late), RILL_ESTATE);
              EXPECT_NULL_WITH(rill_group_spawn(g, CoroRun, NewCoro([] { return 0; })), RILL_ESTATE);
              EXPECT_EQ(rill_await(rill_task_future(late)), RILL_ECANCELLED);
              rill_task_release(a);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"a got 0"}));
  EXPECT_EQ(rill_future_state(rill_task_future(late)), RILL_CANCELLED);
  rill_task_release(late);
}

TEST_F(GroupTest, AddWhileShuttingDownIsEState) {
  rill_task *late = nullptr;
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *bad = Child(g, "bad", 0.005, -1000);
              int rc = rill_sleep(10.0);  // cancelled by the group's abort
              EXPECT_EQ(rc, RILL_ECANCELLED);
              late = Spawn([this] {
                log.push_back("late child body ran");
                return 0;
              });
              EXPECT_FAILS_WITH(rill_group_add(g, late), RILL_ESTATE);
              EXPECT_EQ(rill_group_wait(g, rc), RILL_EGROUP);
              rill_task_release(bad);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"bad got 0"}));
  EXPECT_EQ(rill_future_state(rill_task_future(late)), RILL_CANCELLED);
  rill_task_release(late);
}

TEST_F(GroupTest, JoinFinishStepByStep) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *a = Child(g, "a", 0.01);
              EXPECT_FAILS_WITH(rill_group_finish(g, RILL_OK), RILL_ESTATE);
              rill_future *join = rill_group_join(g, RILL_OK);
              EXPECT_NE(join, nullptr);
              EXPECT_FAILS_WITH(rill_group_finish(g, RILL_OK), RILL_ESTATE);  // children still running
              int rc = rill_await(join);
              EXPECT_EQ(rc, RILL_OK);
              EXPECT_EQ(rill_group_finish(g, rc), RILL_OK);
              rill_task_release(a);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
}

TEST_F(GroupTest, GroupWithoutAParentJoinedFromOutside) {
  rill_group *g = rill_group_new(loop, nullptr);
  ASSERT_NE(g, nullptr);
  rill_task *ok = Child(g, "ok", 0.01);
  rill_task *bad = Child(g, "bad", 0.02, -1000);
  rill_task *slow = Child(g, "slow", 10.0);
  rill_future *join = rill_group_join(g, RILL_OK);
  ASSERT_NE(join, nullptr);
  int rc = rill_loop_run_until(loop, join);
  EXPECT_EQ(rill_group_finish(g, rc), RILL_EGROUP);
  EXPECT_EQ(log, (std::vector<std::string>{"ok got 0", "bad got 0", "slow got " + kCancelled}));
  ASSERT_EQ(rill_group_error_count(g), 1u);
  EXPECT_EQ(rill_group_error_child(g, 0), bad);
  EXPECT_EQ(rill_future_error(rill_task_future(bad)), -1000);
  for (auto *t : {ok, bad, slow}) rill_task_release(t);
  rill_group_release(g);
}

TEST_F(GroupTest, GroupAddRetainsAnExistingTask) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *t = Spawn([this] {
                rill_sleep(0.005);
                log.push_back("added child done");
                return 0;
              });
              EXPECT_EQ(rill_group_add(g, t), RILL_OK);
              rill_task_release(t);  // the group holds it
              EXPECT_EQ(rill_group_count(g), 1u);
              EXPECT_EQ(rill_group_wait(g, RILL_OK), RILL_OK);
              EXPECT_EQ(rill_future_state(rill_task_future(rill_group_child(g, 0))), RILL_DONE);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"added child done"}));
}

TEST_F(GroupTest, EmptyGroupFinishesAtOnce) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              EXPECT_EQ(rill_group_wait(g, RILL_OK), RILL_OK);
              EXPECT_EQ(rill_group_count(g), 0u);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
}
