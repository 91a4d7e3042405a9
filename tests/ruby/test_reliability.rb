# Regression tests of issue 17 that reach Ruby: -inf timeouts expire at once.
require_relative "helper"

class TestReliability < Minitest::Test
  include RillTestHelper

  def test_wait_for_with_minus_infinity_times_out_at_once
    t0 = now
    assert_raises(Rill::TimeoutError) do
      Rill.run { Rill.wait_for(-Float::INFINITY) { Rill.sleep(5) } }
    end
    assert_operator now - t0, :<, 1.0
  end

  def test_timeout_scope_with_minus_infinity_expires_at_once
    t0 = now
    assert_raises(Rill::TimeoutError) do
      Rill.run { Rill.timeout(-Float::INFINITY) { Rill.sleep(5) } }
    end
    assert_operator now - t0, :<, 1.0
  end

  def test_wait_with_minus_infinity_returns_at_once
    t0 = now
    sizes = Rill.run do
      t = Rill.spawn { Rill.sleep(5) }
      done, pending = Rill.wait([t], timeout: -Float::INFINITY)
      t.cancel
      [done.size, pending.size]
    end
    assert_equal [0, 1], sizes
    assert_operator now - t0, :<, 1.0
  end

  def test_sleep_of_minus_infinity_returns_at_once
    t0 = now
    Rill.run { Rill.sleep(-Float::INFINITY) }
    assert_operator now - t0, :<, 1.0
  end
end
