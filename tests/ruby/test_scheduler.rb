# Rill::Scheduler (bindings/ruby/src/scheduler.c, lib/rill.rb): inside
# Rill.run plain Ruby I/O, sleep, Mutex, Queue, Timeout and Net::HTTP yield
# to the loop; the loop releases the GVL while it waits. Network tests use
# 127.0.0.1 only.
require_relative "helper"
require "io/wait"
require "socket"
require "timeout"
require "net/http"
require "open3"

class TestScheduler < Minitest::Test
  include RillTestHelper

  def test_rill_run_installs_the_scheduler_and_removes_it_after
    seen = Rill.run { [Fiber.scheduler.class, Fiber.current.blocking?] }
    assert_equal [Rill::Scheduler, false], seen
    assert_nil Fiber.scheduler
  end

  # Two tasks' Kernel#sleep(0.2) overlap (~0.2 s; in turn it took 0.4 s).
  # Three tasks keep the bound far from both on a loaded machine.
  def test_tasks_kernel_sleep_concurrently
    t0 = now
    Rill.run { Array.new(3) { Rill.spawn { sleep(0.2) } }.each(&:wait) }
    secs = now - t0
    assert_operator secs, :>=, 0.19
    assert_operator secs, :<, 0.5, "3 x sleep(0.2) in turn would take 0.6 s"
  end

  def test_io_pipe_between_two_tasks
    got = Rill.run do
      r, w = IO.pipe
      reader = Rill.spawn { Array.new(3) { r.gets } }
      Rill.spawn do
        3.times { |i| w.puts("line #{i}"); sleep(0.01) }
        w.close
      end
      lines = reader.value
      r.close
      lines
    end
    assert_equal ["line 0\n", "line 1\n", "line 2\n"], got
  end

  # Plain Ruby: two IO objects on one fd (IO.for_fd). One task waits on the
  # first; another closes the fd through the second before the loop polls
  # again. The wait fails with Errno::EBADF instead of aborting the process
  # (libev asserts on a closed fd it has not yet handed to the kernel; the
  # core checks an iteration's new fds first). (Closing the very IO another
  # fiber waits on is different: Ruby 3.1 raises IOError in the closer and
  # keeps the fd open, with the async gem too.)
  def test_fd_closed_through_another_io_fails_the_wait
    got = Rill.run do
      r, w = IO.pipe
      other = IO.for_fd(r.fileno, autoclose: true)
      r.autoclose = false
      reader = Rill.spawn do
        r.wait_readable
        :woke
      rescue Errno::EBADF => e
        e.class
      end
      Rill.spawn { other.close }
      value = reader.value
      w.close
      value
    end
    assert_equal Errno::EBADF, got
  end

  def test_timeout_interrupts_a_blocked_read
    t0 = now
    err = Rill.run do
      r, w = IO.pipe
      begin
        Timeout.timeout(0.1) { r.read(1) }
        nil
      rescue Timeout::Error => e
        e
      ensure
        r.close
        w.close
      end
    end
    assert_kind_of Timeout::Error, err
    assert_operator now - t0, :<, 1.0 * slow
  end

  def test_timeout_that_does_not_expire_returns_the_value
    assert_equal 42, Rill.run { Timeout.timeout(1) { sleep(0.01); 42 } }
  end

  def test_tcp_echo_with_100_concurrent_clients
    n = 100
    replies = Rill.run do
      server = TCPServer.new("127.0.0.1", 0)
      port = server.addr[1]
      acceptor = Rill.spawn do
        loop do
          client = server.accept
          Rill.spawn do
            while (line = client.gets)
              client.write(line)
            end
          ensure
            client.close
          end
        end
      end
      clients = Array.new(n) do |i|
        Rill.spawn do
          s = TCPSocket.new("127.0.0.1", port)
          s.write("hello #{i}\n")
          reply = s.gets
          s.close
          reply
        end
      end
      out = clients.map(&:value)
      acceptor.cancel
      server.close
      out
    end
    assert_equal Array.new(n) { |i| "hello #{i}\n" }, replies
  end

  # A WEBrick server (on a Ruby thread: it runs while the loop waits)
  # answers after 0.2 s; 20 tasks' Net::HTTP.get overlap.
  def test_net_http_from_20_tasks_is_concurrent
    require "webrick"
    server = WEBrick::HTTPServer.new(BindAddress: "127.0.0.1", Port: 0,
                                     Logger: WEBrick::Log.new(File::NULL), AccessLog: [])
    server.mount_proc("/") do |_req, res|
      sleep 0.2
      res.body = "ok"
    end
    port = server.config[:Port]
    thread = Thread.new { server.start }
    t0 = now
    bodies = Rill.run do
      Array.new(20) { Rill.spawn { Net::HTTP.get(URI("http://127.0.0.1:#{port}/")) } }.map(&:value)
    end
    secs = now - t0
    assert_equal ["ok"] * 20, bodies
    assert_operator secs, :<, 1.5
  ensure
    server&.shutdown
    thread&.join(5)
  end

  # OpenSSL::SSL::SSLSocket over TCPSocket, server and client in two tasks
  # (a self-signed certificate): the handshake and the reads wait on the
  # loop, which keeps ticking.
  def test_ssl_socket_between_two_tasks
    require "openssl"
    key = OpenSSL::PKey::RSA.new(2048)
    cert = OpenSSL::X509::Certificate.new
    cert.version = 2
    cert.serial = 1
    cert.subject = cert.issuer = OpenSSL::X509::Name.parse("/CN=127.0.0.1")
    cert.public_key = key.public_key
    cert.not_before = Time.now - 60
    cert.not_after = Time.now + 3600
    cert.sign(key, OpenSSL::Digest.new("SHA256"))
    reply, ticks = Rill.run do
      server = TCPServer.new("127.0.0.1", 0)
      ctx = OpenSSL::SSL::SSLContext.new
      ctx.cert = cert
      ctx.key = key
      ssl_server = OpenSSL::SSL::SSLServer.new(server, ctx)
      serving = Rill.spawn do
        c = ssl_server.accept
        line = c.gets
        sleep(0.1)
        c.write(line.upcase)
        c.close
      end
      ticks = 0
      ticker = Rill.spawn { loop { Rill.sleep(0.01); ticks += 1 } }
      client = Rill.spawn do
        s = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", server.addr[1]))
        s.sync_close = true
        s.connect
        s.puts("hello")
        r = s.gets
        s.close
        r
      end
      r = client.value
      serving.value
      ticker.cancel
      server.close
      [r, ticks]
    end
    assert_equal "HELLO\n", reply
    assert_operator ticks, :>=, 3
  end

  def test_unix_socket_between_two_tasks
    require "tmpdir"
    got = Dir.mktmpdir do |dir|
      path = File.join(dir, "s")
      Rill.run do
        server = UNIXServer.new(path)
        echo = Rill.spawn do
          c = server.accept
          c.write(c.gets)
          c.close
        end
        client = Rill.spawn do
          s = UNIXSocket.new(path)
          s.puts("over unix")
          r = s.gets
          s.close
          r
        end
        r = client.value
        echo.value
        server.close
        r
      end
    end
    assert_equal "over unix\n", got
  end

  def test_mutex_shared_with_a_ruby_thread
    m = ::Mutex.new
    log = Rill.run do
      log = []
      th = Thread.new { m.synchronize { log << :thread_in; sleep 0.2; log << :thread_out } }
      sleep(0.05) until m.locked?
      other = Rill.spawn { sleep(0.05); log << :loop_alive } # the loop runs while the task waits
      Rill.spawn { m.synchronize { log << :task_in } }.value
      other.value
      th.join
      log
    end
    assert_equal %i[thread_in loop_alive thread_out task_in], log
  end

  def test_queue_shared_with_a_ruby_thread
    q = ::Queue.new
    back = ::Queue.new
    got = Rill.run do
      th = Thread.new do
        3.times { |i| q << i; sleep 0.02 }
        back.pop # waits for the task's answer
      end
      items = Array.new(3) { q.pop }
      back << items.sum
      [items, th.value]
    end
    assert_equal [[0, 1, 2], 3], got
  end

  def test_condition_variable_and_sized_queue_with_a_ruby_thread
    m = ::Mutex.new
    cv = ::ConditionVariable.new
    sq = ::SizedQueue.new(1)
    got = Rill.run do
      ready = false
      waiter = Rill.spawn do
        m.synchronize { cv.wait(m) until ready }
        :signalled
      end
      th = Thread.new do
        sleep 0.05
        m.synchronize { ready = true; cv.signal }
        3.times { |i| sq.push(i) } # blocks on the full queue until the task pops
      end
      items = Array.new(3) { sleep(0.01); sq.pop }
      th.join
      [waiter.value, items]
    end
    assert_equal [:signalled, [0, 1, 2]], got
  end

  def test_thread_join_and_to_thread_do_not_block_the_loop
    ticks = 0
    v = Rill.run do
      ticker = Rill.spawn { loop { Rill.sleep(0.01); ticks += 1 } }
      r = Rill.to_thread { sleep 0.2; :done }
      ticker.cancel
      r
    end
    assert_equal :done, v
    assert_operator ticks, :>=, 5
  end

  def test_call_soon_threadsafe_from_a_thread_wakes_the_loop
    got = Rill.run do
      lp = Rill.loop
      ev = Rill::Event.new
      value = nil
      Thread.new { sleep 0.05; Rill.call_soon_threadsafe(lp) { value = Thread.current; ev.set } }
      ev.wait
      value
    end
    assert_equal Thread.main, got
  end

  def test_call_at_runs_at_the_loop_time
    late = Rill.run do
      ev = Rill::Event.new
      at = Rill.time + 0.05
      ran = nil
      Rill.call_at(at) { ran = Rill.time; ev.set }
      ev.wait
      ran - at
    end
    assert_operator late, :>=, 0
    assert_operator late, :<, 0.2 * slow
  end

  # The loop releases the GVL while it waits: a counter thread keeps at
  # least half its free-running rate during Rill.sleep.
  def test_counter_thread_keeps_running_while_the_loop_waits
    count = 0
    stop = false
    th = Thread.new { count += 1 until stop }
    rate = lambda do |secs, &wait|
      c0 = count
      t0 = now
      wait.call(secs)
      (count - c0) / (now - t0)
    end
    sleep 0.1
    free1 = rate.call(0.2) { |s| sleep s }
    during = rate.call(0.3) { |s| Rill.run { Rill.sleep(s) } }
    free2 = rate.call(0.2) { |s| sleep s }
    stop = true
    th.join
    free = [free1, free2].min # the machine is shared: the lower of the two around it
    assert_operator during, :>=, free / 2,
                    format("per second: free %.0f / %.0f, during Rill.sleep %.0f", free1, free2, during)
  end

  def test_fiber_schedule_spawns_a_task
    log = Rill.run do
      log = []
      f = Fiber.schedule { sleep(0.01); log << :scheduled }
      log << :main
      f.value
      log
    end
    assert_equal %i[main scheduled], log
  end

  def test_standalone_scheduler_runs_scheduled_fibers_at_close
    log = []
    Thread.new do
      Fiber.set_scheduler(Rill::Scheduler.new)
      Fiber.schedule { sleep(0.05); log << :a }
      Fiber.schedule { log << :b }
    end.join
    assert_equal %i[b a], log
  end

  def test_io_wait_with_a_zero_timeout_probes_without_waiting
    got = Rill.run do
      r, w = IO.pipe
      before = r.wait_readable(0)
      w.write("x")
      after = r.wait_readable(0)
      r.close
      w.close
      [before, after.nil? ? nil : :ready]
    end
    assert_equal [nil, :ready], got
  end

  # A trap handler runs while the loop waits (the loop is woken for it) and
  # reaches the loop through call_soon_threadsafe.
  def test_trap_handler_runs_while_the_loop_waits
    prev = nil
    t0 = now
    got = Rill.run do
      lp = Rill.loop
      ev = Rill::Event.new
      prev = Signal.trap("USR1") { lp.call_soon_threadsafe { ev.set } }
      Thread.new { sleep 0.1; Process.kill(:USR1, Process.pid) }
      ev.wait
      :trapped
    end
    assert_equal :trapped, got
    assert_operator now - t0, :<, 2
  ensure
    Signal.trap("USR1", prev || "DEFAULT")
  end

  # A subclass may override a hook; a hook that raises raises in the task.
  def test_a_subclass_hook_that_raises_reaches_the_task
    klass = Class.new(Rill::Scheduler) do
      def kernel_sleep(*)
        raise ArgumentError, "no sleeping here"
      end
    end
    err = Thread.new do
      Fiber.set_scheduler(klass.new) # Rill.run keeps it
      Rill.run do
        Rill.spawn do
          sleep(1)
        rescue ArgumentError => e
          e
        end.value
      end
    end.value
    assert_kind_of ArgumentError, err
    assert_equal "no sleeping here", err.message
  end

  def test_process_wait_does_not_block_the_loop
    ticks = 0
    status = Rill.run do
      ticker = Rill.spawn { loop { Rill.sleep(0.01); ticks += 1 } }
      pid = Process.spawn(RbConfig.ruby, "-e", "sleep 0.2; exit 3")
      _, st = Process.wait2(pid)
      ticker.cancel
      st
    end
    assert_equal 3, status.exitstatus
    assert_operator ticks, :>=, 5
  end

  def test_address_resolve_on_the_pool
    addrs = Rill.run { Addrinfo.getaddrinfo("localhost", 80, nil, :STREAM).map(&:ip_address) }
    refute_empty addrs
    assert(addrs.all? { |a| %w[127.0.0.1 ::1].include?(a) }, addrs.inspect)
  end

  def test_cancel_reaches_a_task_blocked_in_io
    r, w = IO.pipe
    got = Rill.run do
      t = Rill.spawn { r.read(1) }
      Rill.sleep(0.05)
      t.cancel
      begin
        t.value
      rescue Rill::CancelledError
        :cancelled
      end
    end
    assert_equal :cancelled, got
  ensure
    r&.close
    w&.close
  end

  def test_gc_stress_and_compact_during_io
    got = Rill.run do
      r, w = IO.pipe
      reader = Rill.spawn { Array.new(20) { r.gets } }
      writer = Rill.spawn do
        20.times do |i|
          w.puts("x#{i}")
          sleep(0.001)
        end
      end
      GC.stress = true
      begin
        Rill.sleep(0.01)
      ensure
        GC.stress = false
      end
      GC.compact
      lines = reader.value
      writer.value
      GC.compact
      r.close
      w.close
      lines
    end
    assert_equal Array.new(20) { |i| "x#{i}\n" }, got
  end

  # Ctrl+C while every task waits in io_wait: Rill.run raises Interrupt
  # after the main task saw the cancel.
  def test_ctrl_c_during_io_wait
    script = <<~RUBY
      require "rill"
      $stdout.sync = true
      r, w = IO.pipe
      begin
        Rill.run do
          puts "ready"
          r.read(1)
        rescue Rill::CancelledError
          puts "main cancelled"
          raise
        end
      rescue Interrupt
        puts "Interrupt"
      end
    RUBY
    out = +""
    t0 = now
    Open3.popen2(RbConfig.ruby, "-e", script) do |_i, o, wt|
      out << o.gets.to_s
      sleep 0.3
      Process.kill("INT", wt.pid)
      unless wt.join(10)
        Process.kill(:KILL, wt.pid)
        flunk "child hung"
      end
      out << o.read
    end
    assert_equal "ready\nmain cancelled\nInterrupt\n", out
    assert_operator now - t0, :<, 5
  end

  # Thread#raise reaches a loop waiting without the GVL at once.
  def test_thread_raise_reaches_a_waiting_loop
    main = Thread.current
    t0 = now
    Thread.new { sleep 0.1; main.raise(ArgumentError, "from a thread") }
    err = assert_raises(ArgumentError) { Rill.run { Rill.sleep(10) } }
    assert_equal "from a thread", err.message
    assert_operator now - t0, :<, 2
  end
end
