require_relative "helper"
require "open3"
require "rbconfig"

# Rill::Loop.new: the explicit loop (asyncio's loop object) beside Rill.run.
class TestLoop < Minitest::Test
  include RillTestHelper

  def setup
    @loops = []
  end

  def teardown
    @loops.each { |l| l.close unless l.closed? }
  end

  def new_loop(**opts)
    l = Rill::Loop.new(**opts)
    @loops << l
    l
  end

  def code_of(name)
    Rill::Ext.const_get(name)
  end

  def test_new_loop_is_open_and_not_running
    l = new_loop
    assert_kind_of Rill::Loop, l
    refute l.running?
    refute l.closed?
    refute l.is_running
    refute l.is_closed
    refute Fiber.scheduler, "no scheduler outside a run"
  end

  def test_run_until_complete_returns_the_value
    l = new_loop
    t = l.create_task { Rill.sleep(0.01); [:v, 1] }
    refute t.done?, "a task starts when the loop runs"
    assert_equal [:v, 1], l.run_until_complete(t)
    assert t.done?
    assert_equal 42, l.run_until_complete { 42 }
    assert_equal :p, l.run_until_complete(proc { :p })
    assert_equal [:v, 1], l.run_until_complete(t), "a done task: its value at once"
  end

  def test_run_until_complete_raises_the_same_exception
    l = new_loop
    err = nil
    t = l.create_task { err = ArgumentError.new("x"); raise err }
    e = assert_raises(ArgumentError) { l.run_until_complete(t) }
    assert_same err, e
    c = l.create_task { Rill.sleep(10) }
    l.call_soon { c.cancel("bye") }
    assert_raises(Rill::CancelledError) { l.run_until_complete(c) }
  end

  def test_a_task_started_in_one_run_finishes_in_the_next
    l = new_loop
    log = []
    first = l.create_task { log << :first_start; Rill.sleep(0.02); log << :first_end; 1 }
    slow = l.create_task { log << :slow_start; Rill.sleep(0.1); log << :slow_end; 2 }
    assert_equal 1, l.run_until_complete(first)
    refute slow.done?
    assert_equal %i[first_start slow_start first_end], log
    assert_equal 2, l.run_until_complete(slow)
    assert_equal %i[first_start slow_start first_end slow_end], log
  end

  def test_run_forever_until_stop
    l = new_loop
    log = []
    l.call_soon { log << :soon }
    l.call_later(0.03) { log << :later; l.stop }
    l.create_task { Rill.sleep(10); log << :never }
    t0 = now
    assert_nil l.run_forever
    assert_in_delta 0.03, now - t0, 0.2
    assert_equal %i[soon later], log
    # stopped from a task, and again: the loop runs each time
    l.create_task { Rill.sleep(0.01); log << :task; Rill.loop.stop }
    l.run_forever
    assert_equal %i[soon later task], log
  end

  def test_stop_before_the_task_is_done_raises
    l = new_loop
    t = l.create_task { Rill.sleep(10) }
    l.call_later(0.01) { l.stop }
    e = assert_raises(Rill::Error) { l.run_until_complete(t) }
    assert_match(/stopped before/, e.message)
    refute t.done?, "the task goes on in the next run"
    t.cancel
    assert_raises(Rill::CancelledError) { l.run_until_complete(t) }
  end

  def test_inside_a_run
    l = new_loop
    inside = l.run_until_complete do
      cb = nil
      Rill.loop.call_soon { cb = [Rill.loop.equal?(l), l.running?] }
      Rill.sleep(0)
      [Rill.loop.equal?(l), l.running?, l.closed?, Fiber.scheduler.class, cb]
    end
    assert_equal [true, true, false, Rill::Scheduler, [true, true]], inside
    refute l.running?
  end

  def test_the_fiber_scheduler_is_set_for_each_run_and_restored
    l = new_loop
    r, w = IO.pipe
    reader = l.create_task { r.read(3) }
    l.run_until_complete { Rill.sleep(0) }
    assert_nil Fiber.scheduler, "removed after the run"
    refute reader.done?
    got = l.run_until_complete do
      sleep(0.01) # Kernel#sleep through the scheduler
      w.write("abc")
      reader.value
    end
    assert_equal "abc", got
    assert_nil Fiber.scheduler
  ensure
    r&.close
    w&.close
  end

  def test_a_scheduler_set_already_is_kept
    l = new_loop
    sched = Rill::Scheduler.new
    Thread.new do
      Fiber.set_scheduler(sched)
      assert_same sched, l.run_until_complete { Fiber.scheduler }
      assert_same sched, Fiber.scheduler
    end.join
  end

  def test_close_cancels_and_reaps_the_tasks_left
    l = new_loop
    log = []
    l.create_task do
      Rill.sleep(10)
    rescue Rill::CancelledError
      log << :cancelled
      Rill.sleep(0.01) # may still wait while it cleans up
      log << :cleaned
      raise
    end
    l.create_task { log << :never_started }.cancel
    l.run_until_complete { Rill.sleep(0) }
    assert_nil l.close
    assert_equal %i[cancelled cleaned], log
    assert l.closed?
    assert l.is_closed
    refute l.running?
    assert_nil l.close, "closing again does nothing"
  end

  def test_a_closed_loop_refuses_everything
    l = new_loop
    t = l.create_task { 1 }
    l.run_until_complete(t)
    l.close
    [
      -> { l.run_until_complete(t) },
      -> { l.run_until_complete { 1 } },
      -> { l.run_forever },
      -> { l.call_soon { 1 } },
      -> { l.call_later(0.1) { 1 } },
      -> { l.create_task { 1 } },
      -> { l.slow_callback_duration = 0.5 },
    ].each do |misuse|
      e = assert_raises(Rill::Error) { misuse.call }
      assert_equal code_of(:ECLOSED), e.code
    end
    assert_equal 1, t.value, "its done tasks stay readable"
  end

  def test_running_a_running_loop_or_closing_it_is_refused
    l = new_loop
    other = new_loop
    codes = l.run_until_complete do
      [-> { l.run_forever }, -> { l.run_until_complete { 1 } }, -> { l.close },
       -> { other.run_until_complete { 1 } }, -> { Rill.run { 1 } }].map do |misuse|
        misuse.call
        :accepted
      rescue Rill::Error => e
        e.code
      end
    end
    busy = code_of(:EBUSY)
    assert_equal [busy, busy, busy, busy, nil], codes
    refute l.closed?
    assert_equal 2, l.run_until_complete { 2 }, "still usable"
  end

  def test_a_loop_cannot_run_inside_rill_run
    l = new_loop
    e = assert_raises(Rill::Error) { Rill.run { l.run_until_complete { 1 } } }
    assert_equal code_of(:EBUSY), e.code
    e = assert_raises(Rill::Error) { Rill.run { Rill.loop.run_forever } }
    assert_equal code_of(:EBUSY), e.code
  end

  def test_closing_a_loop_while_another_runs
    l = new_loop
    t = l.create_task { Rill.sleep(10) }
    l.run_until_complete { Rill.sleep(0) }
    reports = []
    l.exception_handler = ->(m, _e) { reports << m }
    Rill.run { l.close }
    assert l.closed?
    assert t.done?
    assert_equal 1, reports.grep(/destroyed while pending/).size
  end

  def test_bad_input
    l = new_loop
    assert_raises(TypeError) { l.run_until_complete(5) }
    assert_raises(TypeError) { l.run_until_complete(l) }
    assert_raises(ArgumentError) { l.run_until_complete }
    assert_raises(ArgumentError) { l.run_until_complete(l.create_task { 1 }) { 2 } }
    assert_raises(ArgumentError) { l.create_task }
    assert_raises(TypeError) { l.create_task(name: 5) { 1 } }
    assert_raises(TypeError) { l.call_later("x") { 1 } }
    assert_raises(ArgumentError) { l.call_soon }
    assert_raises(TypeError) { l.slow_callback_duration = "x" }
    assert_raises(TypeError) { l.slow_callback_duration = nil }
    assert_raises(ArgumentError) { l.slow_callback_duration = 0 }
    assert_raises(ArgumentError) { l.slow_callback_duration = -1 }
    assert_raises(ArgumentError) { Rill::Loop.new(1) }
    assert_raises(ArgumentError) { Rill::Loop.new(bogus: 1) }
    other = new_loop
    foreign = other.create_task { 1 }
    assert_raises(ArgumentError) { l.run_until_complete(foreign) }
    assert_equal 1, other.run_until_complete(foreign)
    assert_equal 3, l.run_until_complete { 3 }, "still usable"
  end

  def test_an_interrupt_leaves_the_run_and_the_loop_stays_usable
    l = new_loop
    err = Class.new(StandardError)
    th = Thread.new do
      Thread.current.report_on_exception = false
      l.run_forever
    end
    sleep 0.05 until l.running?
    th.raise(err, "stop")
    assert_raises(err) { th.join }
    refute l.running?
    assert_nil Thread.new { Fiber.scheduler }.value
    assert_equal 5, l.run_until_complete { Rill.sleep(0.01); 5 }
  end

  def test_loops_on_two_threads_at_once
    t0 = now
    values = Array.new(2) do |i|
      Thread.new do
        l = Rill::Loop.new
        begin
          l.run_until_complete { Rill.sleep(0.2); i }
        ensure
          l.close
        end
      end
    end.map(&:value)
    assert_equal [0, 1], values
    assert_operator now - t0, :<, 0.35, "the GVL is released while each waits"
  end

  def test_slow_callback_duration
    l = new_loop
    assert_in_delta 0.1, l.slow_callback_duration, 1e-9
    l.slow_callback_duration = 0.25
    assert_in_delta 0.25, l.slow_callback_duration, 1e-9
    refute l.debug?
    l.debug = true
    assert l.debug?
    assert new_loop(debug: true).debug?
  end

  # Debug mode's report names the task's Fiber: where it waits, or where its
  # block was defined once done.
  def slow_worker
    IO.select(nil, nil, nil, 0.08) # blocks the loop (no scheduler hook)
    Rill.sleep(0.01)
  end

  def test_debug_report_names_the_block_and_where_it_runs
    l = new_loop(debug: true)
    l.slow_callback_duration = 0.05
    reports = []
    l.exception_handler = ->(m, _e) { reports << m }
    done_line = __LINE__ + 1
    done = l.create_task(name: "D") { IO.select(nil, nil, nil, 0.08) }
    waiting = l.create_task(name: "W") { slow_worker }
    l.run_until_complete(done)
    l.run_until_complete(waiting)
    file = Regexp.escape(__FILE__)
    assert_equal 2, reports.size, reports.inspect
    assert_match(/\AExecuting <Task D \(entry: block in test_debug_report_names_the_block_and_where_it_runs done, defined at #{file}:#{done_line}\)> took 0\.\d{3} seconds\z/, reports[0])
    sleep_line = method(:slow_worker).source_location[1] + 2
    assert_match(/\AExecuting <Task W \(entry: slow_worker running at #{file}:#{sleep_line}\)> took 0\.\d{3} seconds\z/, reports[1])
  end

  def test_debug_report_in_rill_run_and_below_the_threshold
    reports = []
    Rill.run(debug: true) do
      Rill.loop.exception_handler = ->(m, _e) { reports << m }
      Rill.loop.slow_callback_duration = 0.05
      Rill.spawn(name: "quick") { Rill.sleep(0.1) }.value
      Rill.spawn(name: "slow") { IO.select(nil, nil, nil, 0.08); sleep(0.01) }.value
    end
    assert_equal 1, reports.size, reports.inspect
    assert_match(/\AExecuting <Task slow \(entry: block \(2 levels\) in test_debug_report_in_rill_run_and_below_the_threshold running at #{Regexp.escape(__FILE__)}:\d+\)> took/, reports[0])
  end

  def test_a_describer_that_fails_leaves_the_report_without_entry
    l = new_loop(debug: true)
    l.slow_callback_duration = 0.05
    reports = []
    l.exception_handler = ->(m, _e) { reports << m }
    blk = proc { IO.select(nil, nil, nil, 0.08); :ok }
    blk.define_singleton_method(:source_location) { raise "no location" }
    assert_equal :ok, l.run_until_complete(l.create_task(name: "X", &blk))
    assert_equal ["Executing <Task X> took"], reports.map { |m| m[/\A.*took/] }
    assert_nil $!
  end

  def test_no_report_without_debug_mode
    l = new_loop
    l.slow_callback_duration = 0.01
    reports = []
    l.exception_handler = ->(m, _e) { reports << m }
    l.run_until_complete { IO.select(nil, nil, nil, 0.03) }
    assert_empty reports
  end

  def fd_count
    Dir.children("/proc/self/fd").size
  end

  # Loops dropped without close, with tasks done or never started, callbacks
  # and timers pending: the GC closes them (no fd or registry entry left),
  # the never-started tasks reported as destroyed on stderr.
  def make_abandoned_loops(n)
    n.times do
      l = Rill::Loop.new
      l.create_task { 1 }
      l.call_later(10) { l }
      l.run_until_complete { Rill.sleep(0) }
      l.create_task { 2 } # never started
      l.call_soon { 3 }
    end
    nil
  end

  def test_a_loop_collected_without_close
    make_abandoned_loops(3)
    4.times { GC.start(full_mark: true, immediate_sweep: true) }
    fds0 = fd_count
    pending0, callbacks0 = Rill::Ext.registry_counts
    _out, err = capture_subprocess_io do
      make_abandoned_loops(50)
      4.times { GC.start(full_mark: true, immediate_sweep: true) }
    end
    assert_operator fd_count - fds0, :<, 20, "the loops' fds were closed"
    pending, callbacks = Rill::Ext.registry_counts
    assert_operator pending - pending0, :<, 10
    assert_operator callbacks - callbacks0, :<, 20
    assert_match(/destroyed while pending/, err) unless err.empty?
    assert_equal 7, Rill.run { Rill.sleep(0); 7 }, "rill still works"
  end

  # A task suspended mid-body (here in IO#read) keeps its dropped loop alive:
  # its fiber cannot be unwound during GC, and dropping it inside IO#read
  # would corrupt Ruby's list of fds being waited on.
  def make_loops_with_suspended_readers(n)
    pipes = []
    n.times do
      l = Rill::Loop.new
      r, w = IO.pipe
      pipes << w
      l.create_task { r.read(1) }
      l.run_until_complete { Rill.sleep(0) }
    end
    pipes
  end

  def test_a_dropped_loop_with_a_suspended_task_is_kept
    writers = make_loops_with_suspended_readers(5)
    4.times { GC.start(full_mark: true, immediate_sweep: true) }
    5.times do
      r, w = IO.pipe # a close walks the VM's waiting fds: still sound
      r.close
      w.close
    end
    assert_operator ObjectSpace.each_object(Rill::Loop).count { |l| !l.closed? }, :>=, 5
    writers.each(&:close)
  end

  def test_gc_compact_between_runs
    l = new_loop
    t = l.create_task { s = "x" * 3; Rill.sleep(0.01); s + Object.new.class.name }
    l.run_until_complete { Rill.sleep(0) }
    GC.compact if GC.respond_to?(:compact)
    GC.start
    assert_equal "xxxObject", l.run_until_complete(t)
  end

  def test_no_crash_at_exit_without_close
    script = <<~RUBY
      require "rill"
      $keep = Rill::Loop.new
      $keep.create_task { Rill.sleep(10) }
      $keep.run_until_complete { Rill.sleep(0) }
      r, w = IO.pipe
      drop = Rill::Loop.new
      drop.create_task { sleep(10) }
      drop.create_task { r.read(1) }
      drop.run_until_complete { Rill.sleep(0) }
      drop = nil
      3.times { x, y = IO.pipe; x.close; y.close }
      GC.start
      puts "end"
    RUBY
    out, err, st = Open3.capture3(RbConfig.ruby, "-e", script)
    assert st.success?, "status #{st.inspect}, stderr #{err}"
    assert_equal "end\n", out
    assert_empty err.lines.reject { |line| line =~ /destroyed while pending/ }
  end
end
