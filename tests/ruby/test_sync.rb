# Rill::Event, Mutex, Semaphore, Condition, Barrier and the queues
# (bindings/ruby/src/sync.c): each asyncio rule once (the rules are the
# core's; these check the binding passes them through), cancellation at
# every waiting point, the GC, loop close, bad arguments and value kinds.
require_relative "helper"

class TestSync < Minitest::Test
  include RillTestHelper

  # Runs the block in Rill.run, then checks no queued Ruby value is left held.
  def run_sync(&block)
    value = Rill.run(&block)
    GC.start
    assert_equal 0, Rill::Ext.sync_values, "Ruby values still held for queue items"
    value
  end

  # ---- Event ----

  def test_event_set_wakes_every_waiter_in_order_even_if_cleared
    log = run_sync do
      ev = Rill::Event.new
      log = []
      tasks = %w[a b c].map { |n| Rill.spawn { ev.wait; log << n } }
      Rill.sleep(0)
      refute ev.set?
      ev.set
      assert ev.set?
      ev.clear
      Rill.gather(*tasks)
      log
    end
    assert_equal %w[a b c], log
  end

  def test_uncontended_operations_do_not_yield
    log = run_sync do
      log = []
      other = Rill.spawn { log << :other }
      ev = Rill::Event.new
      ev.set
      ev.wait
      Rill::Mutex.new.lock
      Rill::Semaphore.new(1).acquire
      q = Rill::Queue.new
      q.push(1)
      q.pop
      log << :main
      other.value
      log
    end
    assert_equal %i[main other], log
  end

  # ---- Mutex ----

  def test_mutex_fifo_and_no_barging
    log = run_sync do
      m = Rill::Mutex.new
      log = []
      m.lock
      tasks = %w[a b c].map { |n| Rill.spawn { m.synchronize { log << n; Rill.sleep(0) } } }
      Rill.sleep(0)
      m.unlock
      log << [:try_lock, m.try_lock] # handed to a already: no barging
      Rill.gather(*tasks)
      refute m.locked?
      log
    end
    assert_equal [[:try_lock, false], "a", "b", "c"], log
  end

  def test_mutex_unlock_when_unlocked_raises_thread_error
    run_sync do
      m = Rill::Lock.new
      assert_same Rill::Mutex, Rill::Lock
      assert_raises(ThreadError) { m.unlock }
      assert m.try_lock
      assert m.locked?
      m.release
      refute m.locked?
    end
  end

  def test_mutex_cancelled_waiter_just_handed_the_lock_passes_it_on
    log = run_sync do
      m = Rill::Mutex.new
      log = []
      m.lock
      t1 = Rill.spawn do
        m.lock
        log << :t1_locked
      rescue Rill::CancelledError
        log << :t1_cancelled
      end
      t2 = Rill.spawn { m.lock; log << :t2_locked; m.unlock }
      Rill.sleep(0)
      m.unlock      # hands the lock to t1 ...
      t1.cancel     # ... which is cancelled before it runs
      Rill.gather(t1, t2)
      log << m.locked?
      log
    end
    assert_equal [:t1_cancelled, :t2_locked, false], log
  end

  def test_mutex_synchronize_unlocks_on_exception
    run_sync do
      m = Rill::Mutex.new
      assert_raises(ArgumentError) { m.synchronize { raise ArgumentError } }
      refute m.locked?
      assert_equal 5, m.synchronize { 5 }
    end
  end

  # ---- Semaphore ----

  def test_semaphore_bounds_concurrency_fifo
    log = run_sync do
      sem = Rill::Semaphore.new(2)
      inside = 0
      most = 0
      order = []
      tasks = Array.new(6) do |i|
        Rill.spawn do
          sem.acquire do
            order << i
            inside += 1
            most = [most, inside].max
            Rill.sleep(0.001)
            inside -= 1
          end
        end
      end
      Rill.gather(*tasks)
      [most, order, sem.value, sem.locked?]
    end
    assert_equal [2, (0..5).to_a, 2, false], log
  end

  def test_semaphore_acquire_without_block_and_locked
    run_sync do
      sem = Rill::Semaphore.new(1)
      assert_equal true, sem.acquire
      assert sem.locked?
      assert_equal 0, sem.value
      sem.release
      sem.release # unbounded: grows
      assert_equal 2, sem.value
    end
  end

  def test_bounded_semaphore_release_past_its_value_raises
    run_sync do
      sem = Rill::BoundedSemaphore.new(1)
      assert_kind_of Rill::Semaphore, sem
      e = assert_raises(Rill::Error) { sem.release }
      assert_equal Rill::Ext::ETOOMANY, e.code
      sem.acquire { assert sem.locked? }
      assert_equal 1, sem.value
    end
  end

  # ---- Condition ----

  def test_condition_wait_signal_broadcast
    log = run_sync do
      cond = Rill::Condition.new
      log = []
      tasks = %w[a b c].map do |n|
        Rill.spawn { cond.synchronize { cond.wait; log << n } }
      end
      Rill.sleep(0)
      cond.synchronize { assert_equal 1, cond.signal }
      Rill.sleep(0.01)
      log << :after_signal
      cond.synchronize { assert_equal 2, cond.broadcast }
      Rill.gather(*tasks)
      refute cond.lock.locked?
      log
    end
    assert_equal ["a", :after_signal, "b", "c"], log
  end

  def test_condition_wait_for_predicate_and_shared_lock
    log = run_sync do
      m = Rill::Mutex.new
      cond = Rill::Condition.new(m)
      assert_same m, cond.lock
      items = []
      consumer = Rill.spawn { cond.synchronize { cond.wait_for { items.size >= 3 && items.dup } } }
      3.times do |i|
        Rill.sleep(0)
        m.synchronize { items << i; cond.notify_all }
      end
      consumer.value
    end
    assert_equal [0, 1, 2], log
  end

  def test_condition_wait_or_signal_without_the_lock_raises
    run_sync do
      cond = Rill::Condition.new
      assert_raises(ThreadError) { cond.wait }
      assert_raises(ThreadError) { cond.signal }
      assert_raises(TypeError) { Rill::Condition.new(::Mutex.new) }
    end
  end

  # ---- Barrier ----

  def test_barrier_arrival_index_abort_reset
    run_sync do
      b = Rill::Barrier.new(3)
      assert_equal 3, b.parties
      tasks = Array.new(3) { Rill.spawn { b.wait } }
      Rill.sleep(0)
      assert_equal [0, 1, 2], Rill.gather(*tasks)
      assert_equal 0, b.n_waiting

      waiter = Rill.spawn { b.wait }
      Rill.sleep(0)
      assert_equal 1, b.n_waiting
      b.reset # the waiter's wait breaks; the barrier is usable again
      assert_raises(Rill::BrokenBarrierError) { waiter.value }
      refute b.broken?

      waiter = Rill.spawn { b.wait }
      Rill.sleep(0)
      b.abort
      assert b.broken?
      e = assert_raises(Rill::BrokenBarrierError) { waiter.value }
      assert_kind_of Rill::Error, e
      assert_raises(Rill::BrokenBarrierError) { b.wait }
    end
  end

  # ---- Queues ----

  def test_queue_kinds_fifo_lifo_priority_ties_fifo
    run_sync do
      q = Rill::Queue.new
      l = Rill::LifoQueue.new
      pq = Rill::PriorityQueue.new
      [1, 2, 3].each { |i| q << i; l.push(i) }
      assert_equal [1, 2, 3], Array.new(3) { q.pop }
      assert_equal [3, 2, 1], Array.new(3) { l.dequeue }
      pq.push(:late, priority: 5)
      pq.push(:first_tie, priority: 1)
      pq.enqueue(:second_tie, priority: 1)
      pq.push(:urgent, priority: -3)
      assert_equal 4, pq.size
      assert_equal %i[urgent first_tie second_tie late], Array.new(4) { pq.pop }
      assert_nil q.limit
      assert q.empty?
      refute q.full?
    end
  end

  def test_limited_queue_blocks_push_until_a_pop
    run_sync do
      q = Rill::LimitedQueue.new(1)
      assert_equal 1, q.limit
      log = []
      producer = Rill.spawn { 3.times { |i| q.push(i); log << i } }
      Rill.sleep(0.01)
      assert_equal [0], log # the second push waits for room
      assert q.full?
      refute producer.done?
      assert_equal 0, q.pop
      Rill.sleep(0.01)
      assert_equal [0, 1], log
      assert_equal [1, 2], [q.pop, q.pop]
      producer.value
      assert_equal [0, 1, 2], log
    end
  end

  def test_nowait_operations_raise_thread_error
    run_sync do
      q = Rill::LimitedQueue.new(1)
      assert_raises(ThreadError) { q.pop_nowait }
      q.push_nowait(:a)
      assert q.full?
      assert_raises(ThreadError) { q.push_nowait(:b) }
      assert_equal :a, q.pop_nowait
    end
  end

  def test_join_waits_for_task_done_and_too_many_raises
    log = run_sync do
      q = Rill::Queue.new
      log = []
      q << 1 << 2
      worker = Rill.spawn do
        2.times { q.pop; Rill.sleep(0); log << :done_one; q.task_done }
      end
      q.join
      log << :joined
      worker.value
      e = assert_raises(Rill::Error) { q.task_done }
      assert_equal Rill::Ext::ETOOMANY, e.code
      log
    end
    assert_equal %i[done_one done_one joined], log
  end

  def test_close_then_pops_drain_and_raise_closed_queue_error
    run_sync do
      q = Rill::Queue.new
      q << :left
      q.close
      assert q.closed?
      assert_raises(ClosedQueueError) { q << :x }
      assert_raises(ClosedQueueError) { q.push_nowait(:x) }
      assert_equal :left, q.pop
      assert_raises(ClosedQueueError) { q.pop }
      assert_raises(ClosedQueueError) { q.pop_nowait }
    end
  end

  def test_shutdown_wakes_waiting_getters_and_each_stops
    run_sync do
      q = Rill::Queue.new
      seen = []
      reader = Rill.spawn { q.each { |x| seen << x } }
      getter = Rill.spawn { q.pop }
      Rill.sleep(0)
      q << 1
      Rill.sleep(0)
      q.shutdown
      reader.value
      assert_raises(ClosedQueueError) { getter.value }
      assert_equal [1], seen
    end
  end

  def test_immediate_shutdown_with_waiters_on_both_sides
    run_sync do
      full = Rill::LimitedQueue.new(1)
      full << Object.new
      putters = Array.new(2) { Rill.spawn { full.push(Object.new) } }
      empty = Rill::Queue.new
      getters = Array.new(2) { Rill.spawn { empty.pop } }
      joiner = Rill.spawn { full.join }
      Rill.sleep(0)
      assert_equal 2, Rill::Ext.sync_values - 1 # two waiting putters' items + the queued one
      full.shutdown(immediate: true)
      empty.shutdown(immediate: true)
      (putters + getters).each { |t| assert_raises(ClosedQueueError) { t.value } }
      joiner.value # the dropped item counted as done
      assert full.empty?
      assert_equal 0, Rill::Ext.sync_values
    end
  end

  def test_cancelled_getter_loses_no_item
    run_sync do
      q = Rill::Queue.new
      g1 = Rill.spawn { q.pop }
      g2 = Rill.spawn { q.pop }
      Rill.sleep(0)
      q << :only   # handed to g1 ...
      g1.cancel    # ... cancelled before it runs: the item goes to g2
      assert_raises(Rill::CancelledError) { g1.value }
      assert_equal :only, g2.value
      assert q.empty?
    end
  end

  # ---- cancellation at every waiting point ----

  def test_cancel_at_every_waiting_point
    run_sync do
      ev = Rill::Event.new
      m = Rill::Mutex.new
      m.lock
      sem = Rill::Semaphore.new(0)
      cond = Rill::Condition.new
      bar = Rill::Barrier.new(2)
      full = Rill::LimitedQueue.new(1)
      full << :x
      empty = Rill::Queue.new
      unfinished = Rill::Queue.new
      unfinished << :y
      cond_held = nil
      waits = {
        event: -> { ev.wait },
        mutex: -> { m.lock },
        semaphore: -> { sem.acquire },
        condition: lambda {
          cond.lock.lock
          begin
            cond.wait
          ensure
            cond_held = cond.lock.locked? # held again when the cancel arrives
            cond.lock.unlock
          end
        },
        barrier: -> { bar.wait },
        push: -> { full.push(Object.new) },
        pop: -> { empty.pop },
        join: -> { unfinished.join },
      }
      tasks = waits.transform_values { |w| Rill.spawn(&w) }
      Rill.sleep(0)
      tasks.each_value(&:cancel)
      tasks.each do |name, t|
        assert_raises(Rill::CancelledError, name.to_s) { t.value }
      end
      assert cond_held
      assert m.locked?
      assert_equal 0, sem.value
      refute cond.lock.locked?
      assert_equal 0, bar.n_waiting
      assert_equal 1, full.size
      assert empty.empty?
      # everything still works afterwards
      m.unlock
      assert m.try_lock
      sem.release
      sem.acquire
      assert_equal :x, full.pop
    end
  end

  # ---- GC, loop close ----

  def test_gc_during_waits_with_dropped_references
    result = run_sync do
      got = []
      tasks = []
      3.times do
        q = Rill::Queue.new
        ev = Rill::Event.new
        m = Rill::Mutex.new
        m.lock
        tasks << Rill.spawn { got << q.pop.first }
        tasks << Rill.spawn { ev.wait; got << :ev }
        tasks << Rill.spawn { m.lock; got << :m }
        setter = Rill.spawn do
          Rill.sleep(0.001)
          q << [Object.new.to_s.length.positive? ? :item : :no]
          ev.set
          m.unlock
        end
        tasks << setter
      end
      GC.start
      GC.compact if GC.respond_to?(:compact)
      Rill.sleep(0)
      GC.start(full_mark: true, immediate_sweep: true)
      GC.compact if GC.respond_to?(:compact)
      Rill.gather(*tasks)
      got.tally
    end
    assert_equal({ item: 3, ev: 3, m: 3 }, result)
  end

  def test_loop_closed_while_tasks_wait_on_primitives
    cancelled = []
    Rill.run do
      q = Rill::LimitedQueue.new(1)
      q << Object.new
      ev = Rill::Event.new
      m = Rill::Mutex.new
      m.lock
      cond = Rill::Condition.new
      [-> { q.push(Object.new) }, -> { Rill::Queue.new.pop }, -> { ev.wait }, -> { m.lock },
       -> { cond.synchronize { cond.wait } }, -> { Rill::Barrier.new(2).wait }].each do |w|
        Rill.spawn do
          w.call
        rescue Rill::CancelledError
          cancelled << true
          raise
        end
      end
      Rill.sleep(0)
      :main_done # the waiting tasks are cancelled as the loop closes
    end
    assert_equal 6, cancelled.size
    GC.start
    assert_equal 0, Rill::Ext.sync_values
    assert_equal [0, 0], Rill::Ext.registry_counts
  end

  # A host's loop (Rill.attach_loop) closed while Ruby tasks wait on
  # primitives: the core destroys the tasks mid-wait (no callbacks run); the
  # binding lets go of their waits and queued values.
  def test_host_loop_closed_while_tasks_wait_on_primitives
    host = Rill::Ext::Loop.new
    loop = Rill.attach_loop(host)
    waiting = 0
    waits = [
      -> { q = Rill::LimitedQueue.new(1); q << Object.new; waiting += 1; q.push(Object.new) },
      -> { q = Rill::Queue.new; waiting += 1; q.pop },
      -> { ev = Rill::Event.new; waiting += 1; ev.wait },
      -> { m = Rill::Mutex.new; m.lock; waiting += 1; m.lock },
      -> { c = Rill::Condition.new; c.lock.lock; waiting += 1; c.wait },
      -> { s = Rill::Semaphore.new(0); waiting += 1; s.acquire },
      -> { b = Rill::Barrier.new(2); waiting += 1; b.wait },
    ]
    tasks = waits.map { |w| Rill.spawn_on(loop, &w) }
    host.run_once(0.01) until waiting == waits.size
    3.times { host.run_once(0) }
    refute tasks.any?(&:done?)
    assert_equal 2, Rill::Ext.sync_values
    assert_equal 0, host.close
    assert loop.closed?
    tasks = nil
    GC.start
    GC.compact if GC.respond_to?(:compact)
    GC.start
    assert_equal 0, Rill::Ext.sync_values
  end

  # ---- arguments and values ----

  def test_wrong_argument_types
    run_sync do
      assert_raises(TypeError) { Rill::Semaphore.new("x") }
      assert_raises(ArgumentError) { Rill::Semaphore.new(-1) }
      assert_raises(TypeError) { Rill::LimitedQueue.new(nil) }
      assert_raises(ArgumentError) { Rill::LimitedQueue.new }
      assert_raises(ArgumentError) { Rill::LimitedQueue.new(0) }
      assert_raises(TypeError) { Rill::Barrier.new(1.5) }
      assert_raises(ArgumentError) { Rill::Barrier.new(0) }
      assert_raises(TypeError) { Rill::PriorityQueue.new.push(1, priority: "high") }
      assert_raises(ArgumentError) { Rill::Queue.new.push(1, urgency: 2) }
      assert_raises(TypeError) { Rill::Condition.new(Object.new) }
      assert_raises(Rill::Error) { Rill::Event.new.tap { |e| e.send(:initialize) } }
    end
    assert_raises(Rill::Error) { Rill::Queue.new }
    assert_raises(Rill::Error) { Rill::Mutex.allocate.lock }
  end

  def test_values_of_every_kind_round_trip
    big = 2**70
    obj = Object.new
    values = [nil, true, false, 0, -1, 2**62, -2**63, 2**63 - 1, big, -big, 1.5, -0.0,
              Float::INFINITY, "bin\x00\xff".b, "", :sym, obj, [1, "a"], { k: 1 }, 1r]
    out = run_sync do
      q = Rill::Queue.new
      values.each { |v| q << v }
      Array.new(values.size) { q.pop }
    end
    values.zip(out).each do |v, o|
      assert_equal v.class, o.class, "#{v.inspect} came back as #{o.inspect}"
      assert_equal v, o
    end
    assert_same obj, out[values.index(obj)]
    assert_equal Encoding::BINARY, out[values.index("")].encoding
    assert_equal "h\u00e9".b, run_sync { q = Rill::Queue.new; q << "h\u00e9"; q.pop }
    assert_equal "-0.0", run_sync { q = Rill::Queue.new; q << -0.0; q.pop }.to_s
    nan = run_sync { q = Rill::Queue.new; q << Float::NAN; q.pop }
    assert nan.nan?
  end
end
