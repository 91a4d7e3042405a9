# Lesson 1, the loop's cycle, in Ruby: a callback (call_soon), two timers
# (call_later), a task that sleeps and a task that waits for a pipe's
# readability (IO#wait_readable inside a task: Rill::Scheduler's io_wait,
# an I/O watcher on the loop), registered on one loop; each prints when
# the loop runs it. The order is the one every language prints:
# examples/lessons/cycle.txt (about 0.30 s).
require "io/wait"
require "rill"

$stdout.sync = true # each line leaves when printed (the check times them from the first)

def sleeper
  puts "task: started"
  Rill.sleep(0.15)
  puts "task: woke after sleep(0.15)"
end

def reader(pipe)
  puts "reader: waiting for the pipe"
  pipe.wait_readable # the task waits; the loop watches the fd meanwhile
  puts "reader: the pipe is readable, read '#{pipe.read_nonblock(1)}'"
end

Rill.run do
  loop = Rill.loop
  r, w = IO.pipe
  fired = Rill::Event.new
  begin
    # Registered in this order; the transcript shows the order they run in.
    loop.call_later(0.30) do
      puts "timer: call_later(0.30) fired"
      fired.set
    end
    loop.call_soon { puts "callback: call_soon ran" }
    t = Rill.spawn { sleeper }
    rd = Rill.spawn { reader(r) }
    loop.call_later(0.05) { puts "timer: wrote 'x' to the pipe" if w.write("x") == 1 }
    Rill.gather(t, rd, Rill.spawn { fired.wait })
    puts "main: done"
  ensure
    r.close
    w.close
  end
end
