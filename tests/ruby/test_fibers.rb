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
