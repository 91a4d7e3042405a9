# Embedding: a loop the host creates and runs (here Rill::Ext::Loop and
# run_once): Rill.attach_loop, Rill.spawn_on, Rill.future_address,
# Rill.wrap_future -- the same shape as the Lua binding's.
require_relative "helper"

class TestEmbed < Minitest::Test
  def test_attached_loop_runs_ruby_tasks
    host = Rill::Ext::Loop.new
    loop = Rill.attach_loop(host)
    assert_kind_of Rill::Loop, loop
    assert_same loop, Rill.attach_loop(host), "one Loop object per open loop"
    t = Rill.spawn_on(loop, name: "embedded") do
      Rill.sleep(0.01)
      inner = Rill.spawn { 21 } # the whole API works inside
      inner.value * 2
    end
    assert_equal "embedded", t.name
    hf = Rill::Ext::Future.new(host) # a future of the host's
    w = Rill.wrap_future(hf)
    t2 = Rill.spawn_on(loop) { w.value }
    t3 = Rill.spawn_on(loop) { Rill.wrap_future(Rill.future_address(t)).value }
    host.run_once(0.1) until t.done?
    assert_equal 42, t.value
    refute t2.done?
    hf.set_double(2.5)
    host.run_once(0.1) until t2.done? && t3.done?
    assert_equal 2.5, t2.value
    assert_equal 42, t3.value
    assert_kind_of Integer, Rill.future_address(t)
    assert_equal 0, host.close
  end

  def test_bad_addresses
    assert_raises(TypeError) { Rill.attach_loop(:x) }
    assert_raises(ArgumentError) { Rill.attach_loop(0) }
    assert_raises(TypeError) { Rill.wrap_future("x") }
    host = Rill::Ext::Loop.new
    host.close
    assert_raises(Rill::Error) { Rill.attach_loop(host) }
  end

  def test_exception_handler_on_attached_loop_gets_ruby_reports
    host = Rill::Ext::Loop.new
    loop = Rill.attach_loop(host)
    reports = []
    loop.exception_handler = ->(msg, exc) { reports << [msg, exc] }
    t = Rill.spawn_on(loop) do
      Rill.spawn { raise "boom" }
      Rill.loop.call_soon { raise "cb" }
      3.times { Rill.sleep(0) }
      :ok
    end
    host.run_once(0.1) until t.done?
    assert_equal :ok, t.value
    assert_equal 0, host.close
    msgs = reports.map { |m, e| [m[/never retrieved|Exception in callback/], e&.message] }
    assert_includes msgs, ["never retrieved", "boom"]
    assert_includes msgs, ["Exception in callback", "cb"]
  end

  def test_attached_loop_closed_by_host
    host = Rill::Ext::Loop.new
    loop = Rill.attach_loop(host)
    assert_equal 0, host.close
    assert loop.closed?, "the core told Ruby (binding state freed)"
    assert_raises(Rill::Error) { Rill.spawn_on(loop) { 1 } }
  end
end
