require_relative "helper"

# Bad arguments raise TypeError / ArgumentError (never crash), misuse Rill::Error.
class TestArgs < Minitest::Test
  def test_run_and_spawn_need_blocks
    assert_raises(ArgumentError) { Rill.run }
    Rill.run do
      assert_raises(ArgumentError) { Rill.spawn }
      assert_raises(ArgumentError) { Rill.wait_for(1) }
      assert_raises(ArgumentError) { Rill.wait_for(1, Rill.spawn { 1 }) { 2 } }
      assert_raises(ArgumentError) { Rill.timeout(1) }
      assert_raises(ArgumentError) { Rill.task_group }
      assert_raises(ArgumentError) { Rill.loop.call_soon }
      assert_raises(ArgumentError) { Rill.loop.call_later(1) }
    end
  end

  def test_sleep_arguments
    Rill.run do
      assert_raises(TypeError) { Rill.sleep("1") }
      assert_raises(TypeError) { Rill.sleep(nil) }
      assert_raises(ArgumentError) { Rill.sleep }
      assert_raises(ArgumentError) { Rill.sleep(Float::NAN) }
      Rill.sleep(-1) # negative: like sleep(0)
      Rill.sleep(Rational(1, 1000))
    end
  end

  def test_awaitables_must_be_tasks
    Rill.run do
      assert_raises(TypeError) { Rill.gather(1) }
      assert_raises(TypeError) { Rill.gather(Rill.spawn { 1 }, "x") }
      assert_raises(TypeError) { Rill.wait_for(1, :nope) }
      assert_raises(TypeError) { Rill.wait_for("1") { 1 } }
      assert_raises(TypeError) { Rill.shield(Object.new) }
      assert_raises(TypeError) { Rill.wait(Rill.spawn { 1 }) }
      assert_raises(TypeError) { Rill.wait([1]) }
      assert_raises(ArgumentError) { Rill.wait([]) }
      assert_raises(ArgumentError) { Rill.wait([Rill.spawn { 1 }], return_when: :bogus) }
      assert_raises(TypeError) { Rill.timeout("soon") { 1 } }
      assert_raises(TypeError) { Rill.loop.call_later("1") { 1 } }
      assert_raises(TypeError) { Rill.loop.exception_handler = 5 }
    end
  end

  def test_task_method_arguments
    Rill.run do
      t = Rill.spawn { Rill.sleep(1) }
      assert_raises(TypeError) { t.cancel(5) }
      assert_raises(ArgumentError) { t.cancel("a", "b") }
      assert_raises(TypeError) { t.name = 5 }
      t.cancel
    end
  end

  def test_no_direct_construction
    assert_raises(NoMethodError, TypeError) { Rill::Task.new }
    assert_raises(NoMethodError, TypeError) { Rill::Future.new }
  end

  def test_pending_value_outside_run
    t = nil
    Rill.run { t = Rill.spawn { Rill.sleep(10) }; Rill.sleep(0) }
    assert t.cancelled?
    assert_raises(Rill::CancelledError) { t.value }
    loop = Rill.run { Rill.loop }
    assert_raises(Rill::Error) { loop.call_soon { 1 } }
    assert_raises(Rill::Error) { loop.time }
  end

  def test_misuse_raises_rill_error
    assert_raises(Rill::Error) { Rill.sleep(0) }
    assert_raises(Rill::Error) { Rill.timeout(1) { 1 } }
    assert_raises(Rill::Error) { Rill.task_group { 1 } }
    assert_raises(Rill::Error) { Rill.spawn { 1 } }
  end
end

# The shared SWIG layer (swig/rill.i) under Ruby: status codes raise.
class TestSwigLayer < Minitest::Test
  def test_swig_loop_and_future
    loop = Rill::Ext::Loop.new
    assert_kind_of Float, loop.time
    f = Rill::Ext::Future.new(loop)
    assert_equal Rill::Ext::PENDING, f.state
    f.set_int(7)
    assert_equal Rill::Ext::DONE, f.state
    assert_equal Rill::Ext::KIND_INT, f.kind
    e = assert_raises(Rill::Error) { f.set_int(8) }
    assert_equal Rill::Ext::ESTATE, e.code
    assert_raises(ArgumentError) { Rill::Ext::Future.new(loop).fail(1) } # codes must be < 0
    g = Rill::Ext::Future.new(loop)
    g.fail(-1000, "app failure")
    assert_equal(-1000, g.error)
    assert_equal "app failure", g.error_message
    assert_equal 0, loop.close
    assert_raises(Rill::Error) { loop.close }
    assert_raises(TypeError) { Rill::Ext::Future.new(:x) }
    assert_equal "invalid argument", Rill::Ext.strerror(Rill::Ext::EINVAL)
    assert_match(/\A\d+\.\d+\.\d+\z/, Rill::VERSION)
  end
end
