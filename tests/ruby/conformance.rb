# The conformance scenarios (tests/conformance/transcript.txt) in Ruby:
# prints the transcript's lines; tests/conformance/check.cmake compares.
require "rill"
$stdout.sync = true

Rill.run do
  # 1. A task group: c1 fails first; c2 fails handling its cancel, c3 ends
  #    cancelled, the body fails handling its cancel.
  t3 = nil
  begin
    Rill.task_group do |g|
      g.spawn { Rill.sleep(0.01); raise "c1" }
      g.spawn do
        Rill.sleep(10)
      rescue Rill::CancelledError
        raise "c2"
      end
      t3 = g.spawn { Rill.sleep(10) }
      begin
        Rill.sleep(10)
      rescue Rill::CancelledError
        raise "body"
      end
    end
    puts "group gave nothing"
  rescue Rill::GroupError => e
    puts "errors: #{e.errors.map(&:message).join(' ')}"
  end
  puts "c3: #{t3.cancelled? ? 'cancelled' : 'not cancelled'}"

  # 2. A task cancelled before its first step.
  ran = false
  early = Rill.spawn { ran = true }
  early.cancel
  begin
    early.value
  rescue Rill::CancelledError
    nil
  end
  puts "early: #{ran ? 'ran' : 'never ran'}, #{early.cancelled? ? 'cancelled' : 'not cancelled'}"
end
