# W1/W2/W3 (bench/README.md) for Ruby, one implementation per run:
#
#   ruby workloads.rb rill|async W1|W2|W3 [tasks=N] [iters=N] [delay=S]
#   ruby workloads.rb rill|async W6 [items=N] [maxsize=N]
#
# W6 (queue): integers 1..items from one producer task to one consumer task
# through a queue of maxsize items (1: every push waits for the consumer);
# rill: Rill::LimitedQueue, async: Async::LimitedQueue. Checks the sum.
#
# rill: the Ruby binding (bench/run puts it on RUBYLIB); async: the async gem
# 1.30 (Debian's ruby-async). Both run the same task bodies. Prints one line
#   RESULT workload=W1 impl=rill version=... tasks=... wall_s=... ns_per_op=...
# after checking the results; on failure prints why on stderr and exits 1.

SLEEP_TOLERANCE_S = 1e-3

def fail!(message)
  warn "bench: FAILED: #{message}"
  exit 1
end

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def parse(argv)
  impl, workload, *rest = argv
  unless %w[rill async].include?(impl) && %w[W1 W2 W3].include?(workload)
    fail!("usage: #{$PROGRAM_NAME} rill|async W1|W2|W3 [tasks=N] [iters=N] [delay=S] | W6 [items=N] [maxsize=N]")
  end
  params = { impl: impl, workload: workload, tasks: workload == "W1" ? 1000 : 100_000,
             iters: 1000, delay: 0.05 }
  rest.each do |arg|
    key, value = arg.split("=", 2)
    fail!("bad argument #{arg.inspect}") unless value && %w[tasks iters delay].include?(key)
    params[key.to_sym] = key == "delay" ? Float(value) : Integer(value)
  rescue ArgumentError
    fail!("bad value in #{arg.inspect}")
  end
  fail!("tasks must be > 0, iters and delay >= 0") if params[:tasks] <= 0 || params[:iters].negative? || params[:delay].negative?
  params
end

# rill: Rill.run / Rill.spawn / Rill.sleep / Rill.gather.
def run_rill(params)
  require "rill"
  tasks, iters, delay = params.values_at(:tasks, :iters, :delay)
  steps = 0
  results = Rill.run do
    case params[:workload]
    when "W1"
      Rill.gather(*Array.new(tasks) do |i|
        Rill.spawn do
          n = 0
          iters.times { Rill.sleep(0); n += 1 }
          steps += n
          i
        end
      end)
    when "W2"
      Rill.gather(*Array.new(tasks) { |i| Rill.spawn { i } })
    else
      Rill.gather(*Array.new(tasks) do
        Rill.spawn do
          t0 = now
          Rill.sleep(delay)
          now - t0
        end
      end)
    end
  end
  [results, steps, Rill::VERSION]
end

# The async gem 1.30: Async { |task| task.async { ... task.yield / task.sleep } }.
def run_async(params)
  require "async"
  tasks, iters, delay = params.values_at(:tasks, :iters, :delay)
  steps = 0
  results = nil
  Async do |top|
    children = case params[:workload]
               when "W1"
                 Array.new(tasks) do |i|
                   top.async do |t|
                     n = 0
                     iters.times { t.yield; n += 1 }
                     steps += n
                     i
                   end
                 end
               when "W2"
                 Array.new(tasks) { |i| top.async { i } }
               else
                 Array.new(tasks) do
                   top.async do |t|
                     t0 = now
                     t.sleep(delay)
                     now - t0
                   end
                 end
               end
    results = children.map(&:wait) # gather
  end.wait
  [results, steps, Async::VERSION]
end

def verify(params, results, steps)
  tasks, iters, delay = params.values_at(:tasks, :iters, :delay)
  fail!("gather returned #{results&.size.inspect} results, expected #{tasks}") unless results&.size == tasks
  if params[:workload] == "W3"
    shortest = results.min
    fail!(format("a sleep(%g) lasted %.6f s", delay, shortest)) if shortest < delay - SLEEP_TOLERANCE_S
    return format(" min_sleep_s=%.6f", shortest)
  end
  fail!("gather results are not the task indexes in order") unless results == (0...tasks).to_a
  fail!("#{steps} switches, expected #{tasks * iters}") if params[:workload] == "W1" && steps != tasks * iters
  ""
end

# ---- W6 (queue) ----

def parse_w6(impl, rest)
  params = { impl: impl, items: 1_000_000, maxsize: 1 }
  rest.each do |arg|
    key, value = arg.split("=", 2)
    fail!("bad argument #{arg.inspect}") unless value && %w[items maxsize].include?(key)
    params[key.to_sym] = Integer(value)
  rescue ArgumentError
    fail!("bad value in #{arg.inspect}")
  end
  fail!("items and maxsize must be >= 1") if params[:items] < 1 || params[:maxsize] < 1
  params
end

def w6_rill(items, maxsize)
  require "rill"
  sum = Rill.run do
    q = Rill::LimitedQueue.new(maxsize)
    consumer = Rill.spawn do
      s = 0
      items.times { s += q.pop }
      s
    end
    i = 0
    q.push(i += 1) while i < items
    consumer.value
  end
  [sum, Rill::VERSION]
end

def w6_async(items, maxsize)
  require "async"
  require "async/queue"
  sum = nil
  Async do |top|
    q = Async::LimitedQueue.new(maxsize)
    consumer = top.async do
      s = 0
      items.times { s += q.dequeue }
      s
    end
    i = 0
    q.enqueue(i += 1) while i < items
    sum = consumer.wait
  end.wait
  [sum, Async::VERSION]
end

def run_w6(impl, rest)
  params = parse_w6(impl, rest)
  items, maxsize = params.values_at(:items, :maxsize)
  t0 = now
  sum, version = impl == "rill" ? w6_rill(items, maxsize) : w6_async(items, maxsize)
  wall = now - t0
  expected = items * (items + 1) / 2
  fail!("sum #{sum.inspect}, expected #{expected}") unless sum == expected
  puts format("RESULT workload=W6 impl=%s version=%s items=%d maxsize=%d ops=%d wall_s=%.6f ns_per_op=%.2f",
              impl, version, items, maxsize, items, wall, wall * 1e9 / items)
  $stdout.flush
  exit 0
end

run_w6(ARGV[0], ARGV[2..]) if ARGV[1] == "W6" && %w[rill async].include?(ARGV[0])

params = parse(ARGV)
t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
results, steps, version = params[:impl] == "rill" ? run_rill(params) : run_async(params)
wall = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
extra = verify(params, results, steps)
ops = params[:workload] == "W1" ? params[:tasks] * params[:iters] : params[:tasks]
puts format("RESULT workload=%s impl=%s version=%s tasks=%d iters=%d delay=%g ops=%d wall_s=%.6f ns_per_op=%.2f%s",
            params[:workload], params[:impl], version, params[:tasks], params[:iters], params[:delay],
            ops, wall, wall * 1e9 / ops, extra)
$stdout.flush
