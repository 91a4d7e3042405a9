require_relative "helper"

class TestBasics < Minitest::Test
  include RillTestHelper

  def test_run_returns_block_value
    assert_equal 42, Rill.run { 42 }
    assert_equal "str", Rill.run { "str" }
    obj = Object.new
    assert_same obj, Rill.run { obj }
  end

  def test_run_raises_block_exception_same_object
    err = Class.new(StandardError)
    raised = nil
    e = assert_raises(err) { Rill.run { raised = err.new("x"); raise raised } }
    assert_same raised, e
  end

  def test_each_run_has_its_own_loop
    l1 = Rill.run { Rill.loop }
    l2 = Rill.run { Rill.loop }
    refute_same l1, l2
    assert l1.closed?
  end

  def test_run_inside_run_raises
    e = assert_raises(Rill::Error) { Rill.run { Rill.run { 1 } } }
    assert_match(/running loop/, e.message)
  end

  def test_sleep_outside_run_raises
    assert_raises(Rill::Error) { Rill.sleep(0.1) }
    assert_raises(Rill::Error) { Rill.spawn { 1 } }
    assert_raises(Rill::Error) { Rill.loop }
    assert_raises(Rill::Error) { Rill.gather(1) } rescue nil
  end

  def test_two_sleeps_overlap
    t0 = now
    r = Rill.run do
      Rill.gather(Rill.spawn { Rill.sleep(0.2); :a }, Rill.spawn { Rill.sleep(0.2); :b })
    end
    assert_equal %i[a b], r
    assert_in_delta 0.2, now - t0, 0.15
  end

  def test_sleep_never_early
    Rill.run do
      t0 = now
      Rill.sleep(0.05)
      assert_operator now - t0, :>=, 0.049
    end
  end

  # Even after a long iteration (the loop's cached time lags), a sleep lasts
  # at least its delay on the task's own clock.
  def test_sleep_never_short_after_long_iteration
    Rill.run do
      busy = Rill.spawn { t = now; nil while now - t < 0.05 }
      sleeper = Rill.spawn { t0 = now; Rill.sleep(0.02); now - t0 }
      busy.value
      assert_operator sleeper.value, :>=, 0.0199
    end
  end

  def test_task_starts_next_iteration
    log = []
    Rill.run do
      t = Rill.spawn { log << :child }
      log << :parent
      t.value
    end
    assert_equal %i[parent child], log
  end

  def test_sleep0_alternates
    log = []
    Rill.run do
      a = Rill.spawn { 3.times { |i| log << "a#{i}"; Rill.sleep(0) } }
      b = Rill.spawn { 3.times { |i| log << "b#{i}"; Rill.sleep(0) } }
      Rill.gather(a, b)
    end
    assert_equal %w[a0 b0 a1 b1 a2 b2], log
  end

  def test_value_of_done_task_does_not_yield
    log = []
    Rill.run do
      t = Rill.spawn { 7 }
      Rill.sleep(0)
      other = Rill.spawn { log << :other }
      log << t.value
      log << :after
      other.value
    end
    assert_equal [7, :after, :other], log
  end

  def test_exception_reaches_waiter_same_object_with_backtrace
    Rill.run do
      orig = nil
      t = Rill.spawn { orig = ArgumentError.new("boom"); raise orig }
      e = assert_raises(ArgumentError) { t.value }
      assert_same orig, e
      assert e.backtrace.any? { |l| l.include?("test_basics.rb") }
      assert_same orig, t.exception
      e2 = assert_raises(ArgumentError) { t.value }
      assert_same orig, e2
    end
  end

  def test_cancelled_error_is_not_standard_error
    assert Rill::CancelledError < Exception
    refute Rill::CancelledError < StandardError
    assert Rill::TimeoutError < StandardError
    assert Rill::Error < StandardError
  end

  def test_bare_rescue_does_not_swallow_cancel
    log = []
    Rill.run do
      t = Rill.spawn do
        begin
          Rill.sleep(10)
        rescue StandardError
          log << :swallowed
        end
        log << :after
      end
      Rill.sleep(0)
      assert t.cancel
      assert_raises(Rill::CancelledError) { t.value }
      assert t.cancelled?
      assert t.done?
    end
    assert_empty log
  end

  def test_cancel_semantics
    Rill.run do
      t = Rill.spawn { Rill.sleep(10) }
      Rill.sleep(0)
      assert_equal true, t.cancel("m1")
      assert_equal true, t.cancel("m2")
      e = assert_raises(Rill::CancelledError) { t.value }
      assert_equal "m1", e.message
      assert_equal false, t.cancel
      done = Rill.spawn { 1 }
      done.value
      assert_equal false, done.cancel
    end
  end

  def test_cancel_before_start_never_runs_body
    ran = false
    Rill.run do
      t = Rill.spawn { ran = true }
      t.cancel
      assert_raises(Rill::CancelledError) { t.value }
      assert t.cancelled?
    end
    refute ran
  end

  def test_task_may_catch_cancel_and_return
    Rill.run do
      t = Rill.spawn do
        Rill.sleep(10)
      rescue Rill::CancelledError
        :caught
      end
      Rill.sleep(0)
      t.cancel
      assert_equal :caught, t.value
      refute t.cancelled?
    end
  end

  def test_cancel_awaiting_task_cancels_awaited_task
    Rill.run do
      inner = Rill.spawn { Rill.sleep(10) }
      outer = Rill.spawn { inner.value }
      Rill.sleep(0)
      Rill.sleep(0)
      outer.cancel
      assert_raises(Rill::CancelledError) { outer.value }
      assert_raises(Rill::CancelledError) { inner.value }
      assert inner.cancelled?
    end
  end

  def test_task_raising_cancelled_error_ends_cancelled
    Rill.run do
      t = Rill.spawn { raise Rill::CancelledError, "self" }
      e = assert_raises(Rill::CancelledError) { t.value }
      assert_equal "self", e.message
      assert t.cancelled?
    end
  end

  def test_run_cancels_leftover_tasks
    log = []
    Rill.run do
      Rill.spawn do
        Rill.sleep(10)
      rescue Rill::CancelledError
        log << :cleanup
        raise
      end
      Rill.sleep(0)
      :main
    end
    assert_equal [:cleanup], log
  end

  def test_values_of_all_kinds
    vals = [nil, true, false, 1, -2**62, 2**80, 1.5, "bytes", :sym, [1, 2], { a: 1 }]
    r = Rill.run { Rill.gather(*vals.map { |v| Rill.spawn { v } }) }
    assert_equal vals, r
  end

  def test_task_names_and_current_task
    Rill.run do
      t = Rill.spawn(name: "worker") { Rill.current_task }
      assert_equal "worker", t.name
      assert_same t, t.value
      assert_equal "main", Rill.current_task.name
      assert_match(/Rill::Task worker done/, t.inspect)
    end
    assert_nil Rill.current_task
  end

  def test_spawn_bad_arguments
    Rill.run do
      e = assert_raises(ArgumentError) { Rill.spawn }
      assert_equal "Rill.spawn needs a block", e.message
      assert_raises(ArgumentError) { Rill.spawn(nam: "x") { 1 } }  # unknown keyword
      assert_raises(ArgumentError) { Rill.spawn(1) { 1 } }          # no positional arguments
      assert_raises(TypeError) { Rill.spawn(name: 5) { 1 } }
      assert_equal 2, Rill.spawn(name: nil) { 2 }.value
    end
    e = assert_raises(Rill::Error) { Rill.spawn { 1 } }
    assert_match(/no running Rill loop/, e.message)
  end

  def test_call_soon_fifo_and_call_later_order
    log = []
    Rill.run do
      l = Rill.loop
      l.call_later(0.02) { log << :late }
      l.call_later(0.01) { log << :early }
      3.times { |i| l.call_soon { log << i } }
      Rill.sleep(0.05)
    end
    assert_equal [0, 1, 2, :early, :late], log
  end

  def test_handle_cancel
    log = []
    Rill.run do
      h = Rill.loop.call_later(0.01) { log << :ran }
      h.cancel
      assert h.cancelled?
      Rill.sleep(0.03)
    end
    assert_empty log
  end

  def test_loop_time
    Rill.run do
      t0 = Rill.time
      Rill.sleep(0.02)
      assert_operator Rill.time - t0, :>=, 0.019
    end
  end

  def test_callback_exception_goes_to_handler_and_loop_keeps_running
    _, reports = run_collecting do |reps|
      err = RuntimeError.new("cb boom")
      Rill.loop.call_soon { raise err }
      Rill.loop.call_soon { :fine }
      Rill.sleep(0.01)
      assert_equal 1, Rill.gather(Rill.spawn { 1 }).first
      assert_equal 1, reps.size
      assert_same err, reps[0][1]
      :ok
    end
    assert_match(/Exception in callback/, reports[0][0])
  end

  def test_default_handler_warns_on_stderr
    _, err = capture_subprocess_io do
      Rill.run do
        Rill.loop.call_soon { raise "visible" }
        Rill.sleep(0.01)
      end
    end
    assert_match(/rill: Exception in callback.*visible/, err)
  end

  def test_unretrieved_task_failure_is_reported
    _, reports = run_collecting do
      Rill.spawn { raise "nobody looks" }
      Rill.sleep(0.01)
    end
    assert(reports.any? { |m, e| m.include?("never retrieved") && e&.message == "nobody looks" }, reports.inspect)
  end

  def test_handler_that_raises_does_not_break_the_loop
    _, err = capture_subprocess_io do
      Rill.run do
        Rill.loop.exception_handler = ->(_m, _e) { raise "handler broken" }
        Rill.loop.call_soon { raise "cb" }
        Rill.sleep(0.01)
        :ok
      end
    end
    assert_match(/exception handler raised/, err)
  end

  def test_await_from_callback_raises
    Rill.run do
      got = nil
      Rill.loop.call_soon do
        got = begin
          Rill.sleep(0)
        rescue Rill::Error => e
          e
        end
      end
      Rill.sleep(0.01)
      assert_kind_of Rill::Error, got
    end
  end

  def test_nested_fiber_cannot_await
    Rill.run do
      f = Fiber.new { Rill.sleep(0) }
      assert_raises(Rill::Error) { f.resume }
    end
  end

  def test_interleaved_tasks_and_exceptions_many
    r = Rill.run do
      ts = Array.new(200) do |i|
        Rill.spawn do
          Rill.sleep(0)
          raise "e#{i}" if i.odd?
          i
        end
      end
      Rill.gather(*ts, return_exceptions: true)
    end
    r.each_with_index { |v, i| i.odd? ? assert_equal("e#{i}", v.message) : assert_equal(i, v) }
  end

  # Ctrl+C while every task sleeps: the main task is cancelled (it can clean
  # up) and Rill.run raises Interrupt, within the watchdog period.
  def test_interrupt_cancels_main_and_raises
    script = <<~RUBY
      $stdout.sync = true
      trap("INT", "DEFAULT")
      require "rill"
      begin
        Rill.run do
          puts "ready"
          Rill.sleep(10)
        rescue Rill::CancelledError
          puts "main cancelled"
          raise
        end
      rescue Interrupt
        puts "Interrupt"
      end
    RUBY
    require "open3"
    out = +""
    t0 = now
    Open3.popen2(RbConfig.ruby, "-e", script) do |_i, o, w|
      out << o.gets.to_s
      sleep 0.3 # the child is now inside Rill.sleep (its loop polls)
      Process.kill("INT", w.pid)
      out << o.read
      w.value
    end
    assert_equal "ready\nmain cancelled\nInterrupt\n", out
    assert_operator now - t0, :<, 5
  end

  # Ctrl+C is the core's: a child process sends SIGINT while Rill.sleep(10)
  # waits in the poll (it prints CLOCK_MONOTONIC just before); Rill.run
  # raises Interrupt within 50 ms, after the main task saw the cancel.
  def test_sigint_raises_interrupt_within_50ms
    r, w = IO.pipe
    pid = Process.spawn(RbConfig.ruby, "-e",
                        "sleep 0.3; t = Process.clock_gettime(Process::CLOCK_MONOTONIC); " \
                        "Process.kill(:INT, #{Process.pid}); puts t", out: w)
    w.close
    cleaned = false
    assert_raises(Interrupt) do
      Rill.run do
        Rill.sleep(10)
      rescue Rill::CancelledError
        cleaned = true
        raise
      end
    end
    t_end = now
    Process.wait(pid)
    sent = Float(r.read)
    r.close
    assert cleaned
    assert_operator t_end - sent, :<, 0.05
    assert_equal "DEFAULT", Signal.trap("INT", "DEFAULT"), "Ruby's handler is back"
  end
end
