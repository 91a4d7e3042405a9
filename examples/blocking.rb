# Lesson 3, blocking against non-blocking, in Ruby: the seed's two tasks,
# A and B, each "work for 1 s", gathered, three ways:
#   - A blocks in IO.select(nil, nil, nil, 1), a wait the Fiber scheduler
#     cannot see (Ruby 3.1's scheduler interface has no hook for it; a C
#     extension's blocking call or CPU-bound work behave the same): the
#     whole loop stops with it, B's one second starts after A's: 2 s.
#     (Kernel#sleep would not do: inside Rill.run the scheduler turns it
#     into Rill.sleep);
#   - both Rill.sleep(1): the loop runs the other meanwhile: 1 s;
#   - A moves its blocking work to a thread (Rill.to_thread) and waits for
#     it: 1 s.
# In debug mode (RILL_DEBUG=1, Rill.run(debug: true) or loop.debug = true)
# the blocked step is reported once on stderr, as asyncio does:
# "Executing <Task A (entry: block in <main> done, defined at
# .../blocking.rb:N)> took 1.001 seconds", N being the line of A's block;
# the threshold is the loop's slow_callback_duration (0.1 s by default).
# Output: examples/lessons/blocking.txt, times within 0.3 s.
require "rill"

$stdout.sync = true # each line as it happens (the check times from the first)

def blocking_worker
  IO.select(nil, nil, nil, 1) # the loop cannot run anything meanwhile
end

def sleeping_worker
  Rill.sleep(1) # yields to the loop for one second (so would sleep(1))
end

def threaded_worker
  Rill.to_thread { IO.select(nil, nil, nil, 1) } # on a thread: the loop goes on
end

def gather_a_and_b(worker_of_a)
  Rill.loop.slow_callback_duration = 0.5 # report steps longer than 0.5 s
  a = Rill.spawn(name: "A", &worker_of_a)
  b = Rill.spawn(name: "B") { sleeping_worker }
  Rill.gather(a, b)
end

[
  ["blocking (IO.select in a task)", proc { blocking_worker }],
  ["non-blocking (Rill.sleep)", proc { sleeping_worker }],
  ["thread pool (Rill.to_thread)", proc { threaded_worker }],
].each do |label, worker|
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  Rill.run { gather_a_and_b(worker) }
  puts format("%s: %.1f s", label, Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0)
  $stdout.flush
end
