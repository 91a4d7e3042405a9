# ctest seed_ruby: runs examples/seed.rb, checks the output order and that
# the two one-second sleeps overlap (0.95-1.2 s from the first line to the end).
require "open3"
seed = ARGV[0] or abort "usage: check_seed.rb examples/seed.rb"
lines = []
t_first = nil
# $stdout.sync: a pipe would otherwise buffer every line until exit.
Open3.popen2(RbConfig.ruby, "-e", "$stdout.sync = true; load ARGV[0]", seed) do |_in, out, wait|
  out.each_line do |l|
    t_first ||= Process.clock_gettime(Process::CLOCK_MONOTONIC)
    lines << l.chomp
  end
  abort "seed.rb exited with #{wait.value.exitstatus}" unless wait.value.success?
end
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t_first
expected = ["Task A started", "Task B started", "Task A finished", "Task B finished"]
abort "unexpected output: #{lines.inspect}" unless lines == expected
abort format("took %.3f s, expected 0.95-1.2 s", elapsed) unless elapsed.between?(0.95, 1.2)
puts format("seed.rb OK in %.3f s", elapsed)
