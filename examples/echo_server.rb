#!/usr/bin/env ruby
# frozen_string_literal: true
#
# examples/echo_server.rb PORT - an echo server written with Ruby's own
# TCPServer and TCPSocket inside Rill.run: Rill::Scheduler (the thread's
# Fiber scheduler while Rill.run runs) turns every accept, read and write
# of a task into a wait on the loop, so one task per client is the whole
# design. Prints "listening on 127.0.0.1:PORT"; SIGINT or SIGTERM stops it
# (the clients' tasks are cancelled) and it exits 0.
#   RUBYLIB=build/bindings/ruby/lib ruby examples/echo_server.rb 7000
require "rill"
require "socket"

port = Integer(ARGV.fetch(0, "7000"))
$stdout.sync = true

def serve(client)
  client.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
  buf = String.new(capacity: 65_536)
  loop { client.write(client.readpartial(65_536, buf)) }
rescue EOFError, Errno::ECONNRESET, Errno::EPIPE
  nil
ensure
  client.close
end

Rill.run do
  stop = Rill::Event.new
  loop_ = Rill.loop
  # A trap handler may run at any point of the main thread: it only asks
  # the loop (thread-safe) to set the event.
  %w[INT TERM].each { |sig| Signal.trap(sig) { loop_.call_soon_threadsafe { stop.set } } }
  server = TCPServer.new("127.0.0.1", port)
  acceptor = Rill.spawn(name: "accept") do
    loop do
      client = server.accept
      Rill.spawn { serve(client) }
    end
  end
  puts "listening on 127.0.0.1:#{port}"
  stop.wait
  acceptor.cancel
  server.close
end
exit 0
