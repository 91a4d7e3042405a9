require_relative "helper"

# Every VALUE held by C survives GC.stress and GC.compact; repeated runs leak
# neither registry entries nor memory.
class TestGC < Minitest::Test
  def workload(n)
    Rill.run do
      errs = []
      Rill.loop.exception_handler = ->(m, e) { errs << [m, e] }
      ts = Array.new(n) do |i|
        Rill.spawn(name: "t#{i}") do
          Rill.sleep(0)
          raise ArgumentError, "e#{i}" if (i % 5).zero?
          ["v#{i}", Object.new, i.to_s * 3]
        end
      end
      res = Rill.gather(*ts, return_exceptions: true)
      Rill.loop.call_soon { "cb".dup << "x" }
      Rill.loop.call_soon { raise "cb error" }
      shielded = Rill.shield(Rill.spawn { Rill.sleep(0); :s }).value
      w = Rill.wait_for(1) { Rill.sleep(0); { k: "v" } }
      g = Rill.task_group { |tg| tg.spawn { [1] }; tg.spawn { Rill.sleep(0); "x" } ; :g }
      c = Rill.spawn { Rill.sleep(10) }
      Rill.sleep(0)
      c.cancel("gc")
      Rill.sleep(0)
      [res, shielded, w, g, c.cancelled?, errs.size]
    end
  end

  def check(r, n)
    res, shielded, w, g, cancelled, nerrs = r
    assert_equal n, res.size
    res.each_with_index do |v, i|
      if (i % 5).zero?
        assert_equal "e#{i}", v.message
      else
        assert_equal "v#{i}", v[0]
        assert_equal i.to_s * 3, v[2]
      end
    end
    assert_equal :s, shielded
    assert_equal({ k: "v" }, w)
    assert_equal :g, g
    assert cancelled
    assert_equal 1, nerrs
  end

  def test_gc_stress
    GC.stress = true
    r = workload(12)
  ensure
    GC.stress = false
    check(r, 12) if r
  end

  def test_gc_compact_between_steps
    r = Rill.run do
      ts = Array.new(100) do |i|
        Rill.spawn do
          s = "s#{i}"
          4.times { Rill.sleep(0); GC.compact if (i % 25).zero? }
          [s, Object.new.to_s.size > 0]
        end
      end
      Rill.loop.call_soon { GC.compact }
      Rill.gather(*ts)
    end
    r.each_with_index { |v, i| assert_equal ["s#{i}", true], v }
    check(workload(30).tap { GC.compact }, 30)
  end

  def test_verify_compaction_references
    skip "GC.verify_compaction_references missing" unless GC.respond_to?(:verify_compaction_references)
    r = Rill.run do
      ts = Array.new(20) { |i| Rill.spawn { Rill.sleep(0); GC.verify_compaction_references(double_heap: true, toward: :empty) if i == 3; "r#{i}" } }
      Rill.gather(*ts)
    end
    assert_equal Array.new(20) { |i| "r#{i}" }, r
  end

  def test_no_leak_over_repeated_runs
    3.times { workload(200) }
    GC.start
    rss0 = rss_kb
    20.times { check(workload(200), 200) }
    GC.start
    assert_equal [0, 0], Rill::Ext.registry_counts, "no pending task or callback left registered"
    assert_equal 0, Rill::Ext.fiber_stats[:live]
    grown = rss_kb - rss0
    assert_operator grown, :<, 40_000, "RSS grew by #{grown} KiB over 20 runs"
  end

  def rss_kb
    File.read("/proc/self/status")[/VmRSS:\s+(\d+)/, 1].to_i
  end
end
