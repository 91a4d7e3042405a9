# Lesson 2, Rill.run against the explicit loop, in Ruby (asyncio's two
# ways to drive a loop, on rill's loop):
# (a) Rill.run { } (asyncio.run): a new loop, the block run as the main
#     task to its end, the tasks left cancelled and run down, the loop
#     closed; it returns the block's value.
# (b) the explicit path (asyncio's loop object): Rill::Loop.new, run until
#     one task is done, run again so that a task started in the first run
#     finishes in the second, stop run_forever from a callback, close.
# (c) misuse, each refused: the exception's class is printed.
# Output: examples/lessons/lifecycle.txt, whose codes (RILL_ECLOSED,
# RILL_EBUSY) read as what Ruby raises for them (Rill::Error, whose #code
# is the rill code).
require "rill"

$stdout.sync = true # each line leaves when printed (the check times them from the first)

# -- (a) --

def leftover
  Rill.sleep(10)
rescue Rill::CancelledError
  puts "run: leftover task cancelled at shutdown"
  raise
end

returned = Rill.run do
  puts "run: main started"
  Rill.spawn { leftover }
  Rill.sleep(0) # let it start: a task cancelled before it starts never runs
  puts "run: main returns"
  42
end
puts "run: returned #{returned}, the loop is gone"

# -- (b) --

def yes_no(flag)
  flag ? "yes" : "no"
end

loop = Rill::Loop.new
puts "loop: created (running: #{yes_no(loop.running?)}, closed: #{yes_no(loop.closed?)})"
first = loop.create_task { Rill.sleep(0.05); 1 }
slow = loop.create_task { Rill.sleep(0.2); 2 }
r = loop.run_until_complete(first)
puts "loop: first -> #{r}, slow still pending: #{yes_no(!slow.done?)}"
r = loop.run_until_complete(slow)
puts "loop: slow -> #{r} (started in the first run, finished in the second)"
stopped = false
loop.call_later(0.05) do
  stopped = true
  loop.stop
end
loop.run_forever
puts "loop: run_forever stopped by a callback" if stopped
loop.close
puts "loop: closed (closed: #{yes_no(loop.closed?)})"

# -- (c) --

def raised
  yield
  "accepted"
rescue StandardError => e # the lesson prints what was raised
  e.class.name
end

puts "misuse: run_until on a closed loop -> #{raised { loop.run_until_complete(first) }}"
puts "misuse: call_soon on a closed loop -> #{raised { loop.call_soon { puts 'never' } }}"

other = Rill::Loop.new
other.run_until_complete do
  running = Rill.loop # inside a task: the running loop, other
  puts "misuse: running a loop that already runs -> #{raised { running.run_forever }}"
  puts "misuse: closing a running loop -> #{raised { running.close }}"
end
other.close
