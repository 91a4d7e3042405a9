require_relative "helper"

# Random awaits, cancels, timeouts, shields and groups with GC.compact in
# the middle: nothing crashes, every task ends, nothing stays registered.
class TestStress < Minitest::Test
  def test_random_mix_with_compaction
    rng = Random.new(1234)
    3.times do
      Rill.run do
        Rill.loop.exception_handler = ->(_m, _e) {}
        tasks = []
        300.times do |i|
          kind = rng.rand(6)
          delay = rng.rand * 0.01
          other = tasks.sample(random: rng)
          tasks << Rill.spawn do
            case kind
            when 0 then Rill.sleep(delay); i
            when 1 then other ? (other.value rescue :err) : i
            when 2 then Rill.wait_for(delay / 2) { Rill.sleep(delay) } rescue :timeout
            when 3 then other ? Rill.shield(other).value : i
            when 4 then Rill.task_group { |g| g.spawn { Rill.sleep(delay); raise "g" if i.odd?; 1 } } rescue :group
            else Rill.timeout(delay) { Rill.sleep(delay * 2) } rescue :to
            end
          end
          tasks.sample(random: rng).cancel if rng.rand < 0.1
          if (i % 50).zero?
            Rill.sleep(0)
            GC.compact
          end
        end
        Rill.gather(*tasks, return_exceptions: true)
        assert tasks.all?(&:done?)
      end
    end
    GC.start
    assert_equal [0, 0], Rill::Ext.registry_counts
  end
end
