# frozen_string_literal: true
#
# rill - an asyncio-style event loop (C, over libev) for Ruby 3.1.
#
#   require "rill"
#   Rill.run do
#     a = Rill.spawn { Rill.sleep(1); :a }
#     b = Rill.spawn { Rill.sleep(1); :b }
#     Rill.gather(a, b)          # => [:a, :b] after ~1 s
#   end
#
# Tasks run on Fibers resumed by the loop (librill.so.1); waiting (sleep,
# Task#value, gather, wait_for, ...) suspends the task's Fiber and hands
# control back to the loop. Semantics follow Python's asyncio and are the
# C core's (gather, cancellation, timeouts, task groups); this file only
# adds Ruby's shape to them.
require "rill/ext"

module Rill
  # Rill::Error < StandardError        misuse (e.g. Rill.sleep outside Rill.run), core failures
  # Rill::CancelledError < Exception   a bare `rescue` does not swallow it
  # Rill::TimeoutError < StandardError wait_for / timeout expiry
  class Error
    # The rill status code (a negative Integer) when the error came from the core.
    def code
      @code
    end
  end

  # Raised by Rill.task_group when children (or the body) failed; #errors
  # holds the very exception objects, in order of failure.
  class GroupError < Error
    attr_reader :errors

    def initialize(errors)
      @errors = errors
      super("#{errors.size} error(s) in task group: " +
            errors.map { |e| "#{e.class}: #{GroupError.message_of(e)}" }.join("; "))
    end

    # An exception's message, or a placeholder when #message itself raises
    # (the group error must not be replaced by that failure).
    def self.message_of(exc)
      exc.message.to_s
    rescue Exception # rubocop:disable Lint/RescueException
      "(#message raised)"
    end
  end

  class Task
    # Waits for the task (from inside another task) and returns its value,
    # or raises its exception (the same object, with its backtrace).
    def value
      Ext.await(self)
    end
    alias wait value

    def inspect
      state = if !done? then "pending"
              elsif cancelled? then "cancelled"
              else "done"
              end
      "#<Rill::Task #{name} #{state}>"
    end
  end

  # Futures returned by Rill.shield (and used inside gather/wait_for).
  class Future
    def value
      Ext.await(self)
    end
    alias wait value
  end

  # The running loop: Rill.loop.call_soon { }, .call_later(s) { }, .time,
  # .exception_handler = ->(message, exception_or_nil) { }.
  #
  # The explicit loop (asyncio's loop object, beside Rill.run):
  #   loop = Rill::Loop.new
  #   t = loop.create_task { Rill.sleep(0.1); 42 }
  #   loop.run_until_complete(t)   # => 42
  #   loop.close                   # cancels and reaps the tasks left
  # A task started in one run goes on in the next; running a running loop,
  # closing it, or running/scheduling on a closed one raise Rill::Error
  # (#code RILL_EBUSY / RILL_ECLOSED).
  class Loop
    # A new loop, open and not running (debug: debug mode, as Rill.run's).
    def self.new(debug: false)
      Ext.loop_new(debug)
    end

    # Starts the block as a task of this loop (it runs when the loop runs).
    def create_task(name: nil, &block)
      raise ArgumentError, "Loop#create_task needs a block" unless block
      Ext.spawn_on(self, block, name)
    end
    alias spawn create_task

    # Runs the loop until the task (or future) is done and returns its value
    # or raises its exception; with a block, the block runs as a new task.
    def run_until_complete(task = nil, &block)
      raise ArgumentError, "run_until_complete takes a task or a block, not both" if task && block
      raise ArgumentError, "run_until_complete needs a task or a block" unless task || block
      task = create_task(&block) if block
      task = create_task(&task) if task.is_a?(Proc)
      with_scheduler { Ext.loop_run_until(self, task) }
    end

    # Runs the loop until #stop (from a callback or a task of this loop).
    def run_forever
      with_scheduler { Ext.loop_run_forever(self) }
    end

    # Cancels the tasks left, runs them to their end (they see
    # CancelledError), then closes the loop. Nothing on a closed loop.
    def close
      return if closed?
      with_scheduler { Ext.loop_close(self) }
    end

    alias is_running running?
    alias is_closed closed?

    def inspect
      "#<Rill::Loop#{closed? ? ' closed' : ''}#{running? ? ' running' : ''}>"
    end

    private

    # The thread's Fiber scheduler while the loop runs (as Rill.run), one
    # per loop so that a fiber blocked in one run is woken in the next;
    # a scheduler set already is kept.
    def with_scheduler
      return yield unless Fiber.scheduler.nil?
      @scheduler ||= Scheduler.new
      Fiber.set_scheduler(@scheduler)
      begin
        yield
      ensure
        Fiber.set_scheduler(nil)
      end
    end
  end

  # ---- Sync primitives (src/sync.c over the core's; asyncio's rules) ----
  # Create them inside Rill.run: each belongs to the running loop. Inside
  # `module Rill` the names Mutex and Queue are these classes; Ruby's own
  # are ::Mutex and ::Queue.

  # An asyncio.Lock under Ruby's Mutex names (no owner; FIFO, no barging).
  class Mutex
    # Locks, yields, unlocks, also when the block raises. A cancel while
    # waiting for the lock leaves it untouched.
    def synchronize
      lock
      begin
        yield
      ensure
        unlock
      end
    end
  end

  class Condition
    def synchronize(&block)
      lock.synchronize(&block)
    end

    # Waits until the block returns a truthy value (checked first, then
    # after each wake-up, with the lock held); returns that value.
    def wait_for
      until (result = yield)
        wait
      end
      result
    end
  end

  # Rill::Queue (unbounded FIFO), LimitedQueue.new(limit), LifoQueue,
  # PriorityQueue (#push(item, priority: n), smallest first, FIFO among
  # equals). #push/#pop wait; #push_nowait/#pop_nowait raise ThreadError
  # (full/empty) instead. After #close/#shutdown, pushes raise
  # ClosedQueueError and so do pops once the queue is empty (asyncio's
  # QueueShutDown; Ruby's ::Queue#pop would return nil).
  class Queue
    # Yields each item until the queue is closed and empty.
    def each
      return enum_for(:each) unless block_given?
      loop { yield pop }
    rescue ClosedQueueError
      self
    end
  end

  # A task group (asyncio.TaskGroup): see Rill.task_group.
  class TaskGroup
    def initialize(group)
      @group = group
    end

    # Spawns a child task owned by the group.
    def spawn(name: nil, &block)
      raise ArgumentError, "TaskGroup#spawn needs a block" unless block
      task = Ext.spawn(block, name)
      @group.add(task)
      task
    end
  end

  # Ruby's Fiber::Scheduler on the loop (src/scheduler.c): Rill.run sets
  # one for its thread, so inside a task plain Ruby I/O (TCPSocket,
  # TCPServer, IO.pipe, Net::HTTP, ...), Kernel#sleep, Mutex, Queue,
  # ConditionVariable, Thread#join, Timeout.timeout, Addrinfo lookups and
  # Process.wait suspend the task and let the loop run the others. Task
  # fibers are non-blocking fibers; callbacks run on the thread's root
  # fiber, where Ruby blocks as usual.
  #
  # It is also a scheduler in its own right:
  #   Fiber.set_scheduler(Rill::Scheduler.new)
  #   Fiber.schedule { ... }   # runs when the scheduler closes (thread exit)
  # Subclasses may override a hook; a hook that raises raises in the fiber
  # that called it. A task cancel reaches a fiber waiting in any hook.
  class Scheduler
    def initialize
      @blocked = {}  # Fiber => Ext::Waker (block / unblock)
      @pending = []  # Fiber.schedule blocks made before a loop runs
      @closed = false
    end

    # Waits until io is ready for events (IO::READABLE | IO::WRITABLE ...)
    # or timeout seconds pass (then false).
    def io_wait(io, events, timeout)
      Ext.io_wait(io.fileno, events, timeout)
    end

    # Kernel#sleep: duration seconds, or until the task is cancelled.
    def kernel_sleep(duration = nil)
      if duration.nil?
        Ext.block_wait(@blocked, nil)
      else
        Rill.sleep(duration)
      end
      true
    ensure
      @blocked.delete(Fiber.current) if duration.nil?
    end

    # A Mutex, Queue, ConditionVariable or Thread#join waits: true once
    # unblocked, false when timeout seconds passed first.
    def block(_blocker, timeout = nil)
      Ext.block_wait(@blocked, timeout)
    ensure
      @blocked.delete(Fiber.current)
    end

    # Wakes a fiber parked in #block; from any thread.
    def unblock(_blocker, fiber)
      @blocked.delete(fiber)&.wake
    end

    # Host name to addresses, on the loop's thread pool (rill_getaddrinfo).
    def address_resolve(hostname)
      Ext.address_resolve(hostname)
    end

    # Timeout.timeout: the core's timeout scope (Rill.timeout), raising
    # klass/message when it expires.
    def timeout_after(duration, klass, message, &block)
      scope = nil
      Rill.timeout(duration) do |s|
        scope = s
        block.call(duration)
      end
    rescue TimeoutError
      raise klass, message if scope&.expired?
      raise
    end

    # Process.wait & co: waitpid on a Ruby thread, joined through #block
    # (as the async gem does): the loop runs meanwhile.
    def process_wait(pid, flags)
      Thread.new { Process::Status.wait(pid, flags) }.value
    end

    # Fiber.schedule { }: a new task of the running loop (it starts in the
    # next iteration); before a loop runs, the block waits for #close.
    def fiber(&block)
      raise ArgumentError, "Fiber.schedule needs a block" unless block
      return Ext.spawn(block, nil) if Ext.running_loop
      raise Error, "the scheduler is closed" if @closed
      @pending << block
      nil
    end

    # Runs the fibers scheduled before a loop ran (Ruby calls it when the
    # scheduler is replaced or the thread ends).
    def close
      return if @closed
      @closed = true
      return if @pending.empty?
      blocks = @pending
      @pending = []
      Rill.run do
        Rill.wait(blocks.map { |b| Ext.spawn(b, nil) })
      end
    end

    def closed?
      @closed
    end
  end

  module_function

  # Runs the block as the main task of a new loop until it finishes, then
  # cancels the tasks left (they see CancelledError), closes the loop and
  # returns the block's value or raises its exception. The thread's Fiber
  # scheduler is a Rill::Scheduler while it runs (one set already is kept).
  # Other Ruby threads run while the loop waits (the GVL is released).
  def run(debug: false, &block)
    raise ArgumentError, "Rill.run needs a block" unless block
    install = Fiber.scheduler.nil?
    Fiber.set_scheduler(Scheduler.new) if install
    begin
      Ext.run(block, debug, sigint_default?)
    ensure
      Fiber.set_scheduler(nil) if install
    end
  end

  # Rill.spawn(name: nil) { ... } is defined in C (src/task.c): it starts
  # the block as a new task (from the next loop iteration).

  # Embedding (bindings/ruby/README.md): starts the block as a task of a
  # loop from Rill.attach_loop; it runs when the host runs that loop.
  def spawn_on(loop, name: nil, &block)
    raise ArgumentError, "Rill.spawn_on needs a block" unless block
    Ext.spawn_on(loop, block, name)
  end

  # Rill.sleep(seconds) is defined in C: it suspends the current task;
  # sleep(0) gives up exactly one loop iteration.

  # Waits for every task and returns their values in argument order. Procs
  # are spawned as tasks. The first exception is raised (the others keep
  # running) unless return_exceptions: true puts exceptions in place.
  def gather(*tasks, return_exceptions: false)
    tasks = tasks.map { |t| t.is_a?(Proc) ? Ext.spawn(t, nil) : t }
    Ext.gather(tasks, return_exceptions)
  end

  # Runs the block as a child task (or waits for the given task) for at most
  # timeout seconds (nil: no limit); on expiry the child is cancelled,
  # awaited, and Rill::TimeoutError is raised.
  def wait_for(timeout, task = nil, &block)
    raise ArgumentError, "Rill.wait_for takes a task or a block, not both" if task && block
    raise ArgumentError, "Rill.wait_for needs a task or a block" unless task || block
    unless timeout.nil? || timeout.is_a?(Numeric)
      raise TypeError, "timeout must be Numeric or nil, got #{timeout.class}"
    end
    task ||= Ext.spawn(block, nil)
    Ext.wait_for(task, timeout)
  end

  # A timeout scope on the current task (asyncio.timeout): when delay
  # seconds pass, the task is cancelled and the scope raises
  # Rill::TimeoutError. The block gets the scope (#expired?, #reschedule).
  def timeout(delay)
    raise ArgumentError, "Rill.timeout needs a block" unless block_given?
    unless delay.nil? || delay.is_a?(Numeric)
      raise TypeError, "delay must be Numeric or nil, got #{delay.class}"
    end
    scope = Ext.timeout_new(delay)
    begin
      result = yield scope
    rescue CancelledError
      rc = scope.exit(Ext::ECANCELLED)
      raise TimeoutError, "timed out after #{delay} s" if rc == Ext::ETIMEDOUT
      raise
    rescue Exception # rubocop:disable Lint/RescueException
      scope.exit(Ext::EEXCEPTION)
      raise
    end
    scope.exit(0)
    result
  end

  # A Future with the task's outcome whose cancellation does not reach the task.
  def shield(task)
    Ext.shield(task)
  end

  WAIT_MODES = {
    first_completed: Ext::WAIT_FIRST_COMPLETED,
    first_exception: Ext::WAIT_FIRST_ERROR,
    all_completed: Ext::WAIT_ALL,
  }.freeze

  # Waits until the condition (:all_completed, :first_completed,
  # :first_exception) or the timeout; returns [done, pending]. Never raises
  # the tasks' errors, never cancels them.
  def wait(tasks, timeout: nil, return_when: :all_completed)
    raise TypeError, "Rill.wait takes an Array of tasks" unless tasks.is_a?(Array)
    mode = WAIT_MODES.fetch(return_when) do
      raise ArgumentError, "return_when must be one of #{WAIT_MODES.keys.inspect}"
    end
    Ext.wait(tasks, mode, timeout)
  end

  # Structured concurrency (asyncio.TaskGroup):
  #   Rill.task_group { |g| g.spawn { ... }; g.spawn { ... } }
  # waits for every child; the first failure cancels the others and the
  # body, then Rill::GroupError (#errors) is raised.
  def task_group
    raise ArgumentError, "Rill.task_group needs a block" unless block_given?
    group = Ext.group_new
    body_error = nil
    body_rc = 0
    begin
      result = yield TaskGroup.new(group)
    rescue Exception => e # rubocop:disable Lint/RescueException
      body_error = e
      body_rc = e.is_a?(CancelledError) ? Ext::ECANCELLED : Ext::EEXCEPTION
    end
    case (rc = group.exit(body_rc)) # the core's rule (asyncio's TaskGroup.__aexit__)
    when 0
      raise body_error if body_error && !body_error.is_a?(CancelledError)
      result
    when Ext::EGROUP
      raise GroupError, group.errors(body_error)
    when Ext::ECANCELLED
      raise body_error if body_error.is_a?(CancelledError)
      raise CancelledError
    else
      raise body_error || Ext.error_for(rc)
    end
  end

  # Ctrl+C is the core's (rill_loop_cancel_on_sigint) while SIGINT has
  # Ruby's default handler (asyncio's rule): the first one cancels the main
  # task, Rill.run raises Interrupt once it ended; a second ends the process.
  def sigint_default?
    return false if Ext.sigint_armed? # another Rill.run has it (probing would undo that)
    prev = Signal.trap("INT", "DEFAULT")
    Signal.trap("INT", prev)
    prev == "DEFAULT"
  end
  private_class_method :sigint_default? if respond_to?(:private_class_method)

  def current_task
    Ext.current_task
  end

  # The running loop; raises Rill::Error outside Rill.run.
  def loop
    Ext.running_loop or raise Error, "no running Rill loop (call this inside Rill.run)"
  end
  alias get_running_loop loop
  module_function :get_running_loop

  # Shortcuts on the running loop.
  def call_soon(&block)
    loop.call_soon(&block)
  end

  def call_later(delay, &block)
    loop.call_later(delay, &block)
  end

  def time
    loop.time
  end

  # Runs the block at the loop's time `time` (Rill.time's clock).
  def call_at(time, &block)
    loop.call_at(time, &block)
  end

  # From any thread (or a trap handler): runs the block on the loop's
  # thread and wakes it. loop: a Rill::Loop (Rill.loop, taken inside
  # Rill.run); the running one by default.
  def call_soon_threadsafe(loop = nil, &block)
    (loop || self.loop).call_soon_threadsafe(&block)
  end

  # Runs the block on a new Ruby thread and waits for its value (or
  # exception) without blocking the loop: the task parks in the scheduler
  # (Thread#join) and the loop releases the GVL while it waits, so the
  # thread runs. A Ruby thread rather than the core's pool: the block needs
  # the GVL throughout, and a pool thread waiting for it could stall the
  # pool's shutdown. A cancel of the task stops the wait, not the thread.
  def to_thread(*args, &block)
    raise ArgumentError, "Rill.to_thread needs a block" unless block
    Thread.new(*args, &block).value
  end

  # What the loop does with failures nobody else can take (a callback that
  # raised, a task failure never retrieved, ...) unless
  # Rill.loop.exception_handler is set: one warning on $stderr.
  def default_exception_handler(message, exception)
    if exception
      # an exception whose #message or #backtrace raises is still reported
      where = begin
        exception.backtrace&.first
      rescue Exception # rubocop:disable Lint/RescueException
        nil
      end
      $stderr.puts("rill: #{message}: #{exception.class}: #{GroupError.message_of(exception)}" \
                   "#{where ? " (#{where})" : ''}")
    else
      $stderr.puts("rill: #{message}")
    end
  end
end
