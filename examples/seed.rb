# The seed example in Ruby: two tasks sleeping one second each, concurrently.
# Prints A started, B started, A finished, B finished in about 1 s, not 2.
require "rill"

def task(name)
  puts "Task #{name} started"
  Rill.sleep(1)          # yields control to the event loop
  puts "Task #{name} finished"
end

Rill.run { Rill.gather(Rill.spawn { task("A") }, Rill.spawn { task("B") }) }
