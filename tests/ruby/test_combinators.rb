require_relative "helper"

class TestCombinators < Minitest::Test
  include RillTestHelper

  def test_gather_order_not_completion_order
    r = Rill.run do
      Rill.gather(Rill.spawn { Rill.sleep(0.03); 1 }, Rill.spawn { Rill.sleep(0.01); 2 },
                  Rill.spawn { 3 })
    end
    assert_equal [1, 2, 3], r
  end

  def test_gather_of_nothing
    assert_equal [], Rill.run { Rill.gather }
  end

  def test_gather_spawns_procs
    assert_equal [1, 2], Rill.run { Rill.gather(-> { 1 }, proc { Rill.sleep(0); 2 }) }
  end

  def test_gather_same_task_twice
    assert_equal [5, 5], Rill.run { t = Rill.spawn { 5 }; Rill.gather(t, t) }
  end

  def test_gather_first_error_others_keep_running
    Rill.run do
      # 0.5 s apart: under valgrind on a loaded machine 40 ms was not enough
      slow = Rill.spawn { Rill.sleep(0.5); :slow }
      orig = nil
      bad = Rill.spawn { Rill.sleep(0.01); orig = KeyError.new("k"); raise orig }
      e = assert_raises(KeyError) { Rill.gather(slow, bad) }
      assert_same orig, e
      refute slow.done?
      assert_equal :slow, slow.value
    end
  end

  def test_gather_return_exceptions
    Rill.run do
      a = Rill.spawn { raise IOError, "io" }
      b = Rill.spawn { Rill.sleep(10) }
      c = Rill.spawn { 3 }
      Rill.sleep(0)
      b.cancel("gone")
      r = Rill.gather(a, b, c, return_exceptions: true)
      assert_kind_of IOError, r[0]
      assert_kind_of Rill::CancelledError, r[1]
      assert_equal 3, r[2]
    end
  end

  def test_cancelling_gather_cancels_children
    Rill.run do
      kids = Array.new(3) { Rill.spawn { Rill.sleep(10) } }
      g = Rill.spawn { Rill.gather(*kids) }
      Rill.sleep(0)
      Rill.sleep(0)
      g.cancel
      assert_raises(Rill::CancelledError) { g.value }
      assert kids.all?(&:cancelled?)
    end
  end

  def test_wait_for_ok_timeout_and_task_argument
    Rill.run do
      assert_equal :v, Rill.wait_for(1) { Rill.sleep(0.01); :v }
      assert_equal :nolimit, Rill.wait_for(nil) { :nolimit }
      cleaned = false
      t0 = now
      assert_raises(Rill::TimeoutError) do
        Rill.wait_for(0.02) do
          Rill.sleep(1)
        ensure
          cleaned = true
        end
      end
      assert cleaned, "the inner task is cancelled and awaited before TimeoutError"
      # under 1 s (the inner sleep) even under valgrind
      assert_operator now - t0, :<, [0.5 * slow, 0.95].min
      t = Rill.spawn { Rill.sleep(1) }
      assert_raises(Rill::TimeoutError) { Rill.wait_for(0.01, t) }
      assert t.cancelled?
      assert_raises(Rill::TimeoutError) { Rill.wait_for(0) { Rill.sleep(0.1) } }
    end
  end

  def test_wait_for_propagates_inner_exception
    Rill.run do
      e = assert_raises(ZeroDivisionError) { Rill.wait_for(1) { 1 / 0 } }
      assert_match(/divided/, e.message)
    end
  end

  def test_timeout_scope
    Rill.run do
      log = []
      assert_raises(Rill::TimeoutError) do
        Rill.timeout(0.02) do
          Rill.sleep(1)
        rescue Rill::CancelledError
          log << :seen
          raise
        end
      end
      assert_equal [:seen], log
      assert_equal 5, Rill.timeout(1) { 5 }
      assert_equal :no_await, Rill.timeout(0) { :no_await }
      # a body that swallows the cancel: no TimeoutError, expired? is true
      scope = nil
      r = Rill.timeout(0.01) do |s|
        scope = s
        begin
          Rill.sleep(1)
        rescue Rill::CancelledError
          :swallowed
        end
      end
      assert_equal :swallowed, r
      assert scope.expired?
    end
  end

  def test_nested_timeouts
    Rill.run do
      outer_fired = false
      begin
        Rill.timeout(0.1) do
          assert_raises(Rill::TimeoutError) { Rill.timeout(0.01) { Rill.sleep(1) } }
          Rill.sleep(1)
        end
      rescue Rill::TimeoutError
        outer_fired = true
      end
      assert outer_fired
    end
  end

  def test_shield
    Rill.run do
      inner = Rill.spawn { Rill.sleep(0.5); :inner } # long enough for valgrind under load
      outer = Rill.spawn { Rill.shield(inner).value }
      Rill.sleep(0.01)
      outer.cancel
      assert_raises(Rill::CancelledError) { outer.value }
      refute inner.done?
      assert_equal :inner, inner.value
      assert_equal :inner, Rill.shield(inner).value
    end
  end

  def test_wait_modes
    Rill.run do
      a = Rill.spawn { Rill.sleep(0.01); 1 }
      b = Rill.spawn { Rill.sleep(0.5); 2 }
      done, pending = Rill.wait([a, b], return_when: :first_completed)
      assert_equal [a], done
      assert_equal [b], pending
      done, pending = Rill.wait([b], timeout: 0.01)
      assert_empty done
      assert_equal [b], pending
      refute b.done?, "wait never cancels"
      c = Rill.spawn { raise "x" }
      done, = Rill.wait([b, c], return_when: :first_exception)
      assert_equal [c], done
      b.cancel
      done, pending = Rill.wait([a, b])
      assert_equal 2, done.size
      assert_empty pending
      assert_raises(RuntimeError) { c.value }
    end
  end

  def test_task_group_ok
    r = Rill.run do
      kids = nil
      body = Rill.task_group do |g|
        kids = [g.spawn { Rill.sleep(0.01); 1 }, g.spawn { 2 }]
        :body
      end
      [body, kids.map(&:value)]
    end
    assert_equal [:body, [1, 2]], r
  end

  def test_task_group_failure_cancels_siblings_and_body
    Rill.run do
      sibling = nil
      body_cancelled = false
      orig = nil
      e = assert_raises(Rill::GroupError) do
        Rill.task_group do |g|
          sibling = g.spawn { Rill.sleep(10) }
          g.spawn { Rill.sleep(0.01); orig = RuntimeError.new("child failed"); raise orig }
          begin
            Rill.sleep(10)
          rescue Rill::CancelledError
            body_cancelled = true
            raise
          end
        end
      end
      assert_equal 1, e.errors.size
      assert_same orig, e.errors[0]
      assert sibling.cancelled?
      assert body_cancelled
    end
  end

  def test_task_group_body_error_cancels_children
    Rill.run do
      kid = nil
      e = assert_raises(Rill::GroupError) do
        Rill.task_group do |g|
          kid = g.spawn { Rill.sleep(10) }
          Rill.sleep(0)
          raise ArgumentError, "body"
        end
      end
      assert(e.errors.any? { |x| x.is_a?(ArgumentError) })
      assert kid.cancelled?
    end
  end

  # asyncio 3.11 TaskGroup.__aexit__ (the core's rule): the children's
  # errors in order of failure, then the body's own.
  def test_task_group_error_order_children_then_body
    Rill.run do
      e = assert_raises(Rill::GroupError) do
        Rill.task_group do |g|
          g.spawn { Rill.sleep(0.01); raise "c1" }
          g.spawn do
            Rill.sleep(10)
          rescue Rill::CancelledError # cancelled by the group: fails anyway
            raise "c2"
          end
          begin
            Rill.sleep(10)
          rescue Rill::CancelledError
            raise ArgumentError, "body" # before c2 fails; still listed last
          end
        end
      end
      assert_equal %w[c1 c2 body], e.errors.map(&:message)
      assert_instance_of ArgumentError, e.errors[2]
    end
  end

  def test_task_group_cancel_while_exiting_waits_for_children
    Rill.run do
      finished = false
      t = Rill.spawn do
        Rill.task_group do |g|
          g.spawn do
            Rill.sleep(10)
          rescue Rill::CancelledError
            Rill.sleep(0.01) # cleanup after the cancel
            finished = true
          end
        end
      end
      Rill.sleep(0.01)
      t.cancel
      assert_raises(Rill::CancelledError) { t.value }
      assert finished
    end
  end

  def test_task_group_parent_cancelled_from_outside
    Rill.run do
      kid = nil
      parent = Rill.spawn do
        Rill.task_group do |g|
          kid = g.spawn { Rill.sleep(10) }
          Rill.sleep(10)
        end
      end
      Rill.sleep(0.01)
      parent.cancel
      assert_raises(Rill::CancelledError) { parent.value }
      assert kid.cancelled?
    end
  end

  def test_future_methods
    Rill.run do
      t = Rill.spawn { Rill.sleep(10) }
      f = Rill.shield(t)
      refute f.done?
      assert f.cancel
      assert f.cancelled?
      refute t.cancelled?
      t.cancel
    end
  end
end
