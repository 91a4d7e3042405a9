# How many concurrent sleeping tasks a Ruby process holds (vm.max_map_count).
#   ruby max_tasks.rb rill|async N [sleep_s]
# Each of N tasks sleeps sleep_s (default 1) then returns; all are gathered.
# Prints "OK impl N wall_s peak_live_fibers" or "FAIL impl N error".
impl, n, d = ARGV[0], Integer(ARGV[1]), Float(ARGV[2] || 1)
t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
begin
  if impl == "rill"
    require "rill"
    peak = 0
    res = Rill.run do
      ts = Array.new(n) { Rill.spawn { Rill.sleep(d); 1 } }
      Rill.sleep(0)
      Rill.sleep(0)
      peak = Rill::Ext.fiber_stats
      Rill.gather(*ts)
    end
    extra = "fibers=#{peak}"
  else
    require "async"
    res = nil
    Async do |top|
      ts = Array.new(n) { top.async { |t| t.sleep(d); 1 } }
      res = ts.map(&:wait)
    end.wait
    extra = ""
  end
  raise "wrong results" unless res.size == n && res.all? { |x| x == 1 }
  puts "OK #{impl} #{n} wall_s=#{(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0).round(2)} #{extra}"
rescue Exception => e # rubocop:disable Lint/RescueException
  puts "FAIL #{impl} #{n} #{e.class}: #{e.message[0, 120]}"
  exit 1
end
