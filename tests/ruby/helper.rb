# Shared by the minitest files: load the binding from RUBYLIB (ctest sets
# it to <build>/bindings/ruby/lib) and minitest from Debian's ruby-minitest.
require "minitest/autorun"
require "rill"

module RillTestHelper
  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Upper bounds on elapsed time are multiplied by this: 1 normally, 10
  # under valgrind (ruby_valgrind.*), whose preload is in LD_PRELOAD and
  # which runs the interpreter ~20x slower. Lower bounds are never scaled.
  def slow
    ENV.fetch("LD_PRELOAD", "").include?("vgpreload") ? 10 : 1
  end

  # Runs the block in Rill.run with an exception handler collecting reports.
  def run_collecting(&block)
    reports = []
    value = Rill.run do
      Rill.loop.exception_handler = ->(msg, exc) { reports << [msg, exc] }
      block.call(reports)
    end
    [value, reports]
  end
end
