require_relative "helper"

# Fiber slots: past the cap (from vm.max_map_count, or Rill::Ext.fiber_cap=)
# new tasks wait to start instead of failing; idle fibers are reused.
class TestFibers < Minitest::Test
  def with_cap(n)
    old = Rill::Ext.fiber_stats[:cap]
    Rill::Ext.fiber_cap = n
    yield
  ensure
    Rill::Ext.fiber_cap = old
  end

  def test_more_tasks_than_fibers
    with_cap(20) do
      idle0 = Rill::Ext.fiber_stats[:idle] # idle fibers are reused even past the cap
      peak = 0
      r = Rill.run do
        ts = Array.new(300) do |i|
          Rill.spawn do
            peak = [peak, Rill::Ext.fiber_stats[:live]].max
            Rill.sleep(0.01)
            i
          end
        end
        Rill.gather(*ts)
      end
      assert_equal (0...300).to_a, r
      assert_operator peak, :<=, 20 + idle0
    end
  end

  def test_cancel_task_waiting_for_a_fiber
    with_cap(2) do
      Rill.run do
        ran = []
        # idle fibers (kept from earlier runs) are used before the cap applies
        k = Rill::Ext.fiber_stats[:idle] + 5
        ts = Array.new(k) { |i| Rill.spawn { ran << i; Rill.sleep(0.02); i } }
        Rill.sleep(0)
        assert_operator Rill::Ext.fiber_stats[:queued], :>=, 1
        ts[k - 1].cancel
        assert_raises(Rill::CancelledError) { ts[k - 1].value }
        assert_equal (0...k - 1).to_a, ts[0, k - 1].map(&:value)
        refute_includes ran, k - 1
      end
    end
  end

  def test_fibers_are_reused
    Rill.run { Rill.gather(*Array.new(50) { Rill.spawn { Rill.sleep(0) } }) }
    idle = Rill::Ext.fiber_stats[:idle]
    assert_operator idle, :>=, 1
    n = Fiber.current.object_id && ObjectSpace.each_object(Fiber).count
    Rill.run { Rill.gather(*Array.new(2000) { |i| Rill.spawn { i } }) }
    assert_operator ObjectSpace.each_object(Fiber).count - n, :<, 100
  end

  # A task's fiber runs the next task once the block is done (whatever the
  # outcome): the next task must see a fresh fiber.
  def test_fiber_locals_do_not_leak_to_the_next_task
    Thread.current[:root] = :kept # the root fiber's own: not touched
    Rill.run do
      f1 = Rill.spawn { Thread.current[:x] = 1; Thread.current["y"] = 2; Fiber.current }.value
      f2, x, keys = Rill.spawn { [Fiber.current, Thread.current[:x], Thread.current.keys] }.value
      assert_same f1, f2, "the fiber is reused"
      assert_nil x
      assert_empty keys
    end
    assert_equal :kept, Thread.current[:root]
  ensure
    Thread.current[:root] = nil
  end

  # The reset itself failing (a frozen Thread: Thread#[]= raises) fails
  # the task, and its fiber is dropped rather than reused with the value.
  def test_fiber_whose_locals_cannot_be_reset_is_not_reused
    r = Thread.new do
      Rill.run do
        f = nil
        a = Rill.spawn { Thread.current[:x] = 1; f = Fiber.current; Thread.current.freeze; :v }
        e = (a.value rescue $!)
        fb, x = Rill.spawn { [Fiber.current, Thread.current[:x]] }.value
        [e.class, f.equal?(fb), x]
      end
    end.value
    assert_equal [FrozenError, false, nil], r
  end

  def test_task_after_a_failed_or_cancelled_task_is_fresh
    Rill.run do
      f1 = nil
      t = Rill.spawn { f1 = Fiber.current; Thread.current[:x] = :dirty; raise "boom" }
      assert_raises(RuntimeError) { t.value }
      f2, x = Rill.spawn { [Fiber.current, Thread.current[:x]] }.value
      assert_same f1, f2, "the body caught the exception: the fiber is reused"
      assert_nil x

      c = Rill.spawn { Thread.current[:x] = :dirty; Rill.sleep(10) }
      Rill.sleep(0)
      c.cancel
      assert_raises(Rill::CancelledError) { c.value }
      x, v = Rill.spawn { Rill.sleep(0.001); [Thread.current[:x], 42] }.value
      assert_nil x
      assert_equal 42, v

      # cancelled inside a scheduler hook (Queue#pop): the next task's
      # blocking call works as on a fresh fiber
      q = Thread::Queue.new
      c = Rill.spawn { q.pop }
      Rill.sleep(0)
      c.cancel
      assert_raises(Rill::CancelledError) { c.value }
      t2 = Rill.spawn { q.pop }
      Rill.sleep(0)
      q.push(7)
      assert_equal 7, t2.value
      assert_equal :ok, Rill.spawn { sleep(0.001); :ok }.value
    end
  end

  def test_hundred_thousand_tasks_on_reused_fibers
    n = ObjectSpace.each_object(Fiber).count
    r = Rill.run do
      Rill.gather(*Array.new(100_000) do |i|
        Rill.spawn do
          Thread.current[:i] ||= i # a leaked fiber-local would give another index
          raise "ten" if (i % 10).zero?
          Thread.current[:i]
        end
      end, return_exceptions: true)
    end
    assert_equal 100_000, r.size
    r.each_with_index do |v, i|
      if (i % 10).zero?
        assert_kind_of RuntimeError, v
      else
        assert_equal i, v
      end
    end
    assert_operator ObjectSpace.each_object(Fiber).count - n, :<, 100
  end
end

class TestThreads < Minitest::Test
  # Each Ruby thread may run its own loop; fibers never cross threads.
  def test_loops_in_two_threads
    Rill.run { Rill.gather(*Array.new(20) { Rill.spawn { Rill.sleep(0) } }) } # idle fibers on this thread
    results = Array.new(2) do |k|
      Thread.new do
        Rill.run do
          Rill.gather(*Array.new(30) { |i| Rill.spawn { Rill.sleep(0.001); k * 100 + i } })
        end
      end
    end.map(&:value)
    assert_equal (0...30).to_a, results[0]
    assert_equal (100...130).to_a, results[1]
    assert_equal [1, 2], Rill.run { Rill.gather(Rill.spawn { 1 }, Rill.spawn { 2 }) }
  end
end
