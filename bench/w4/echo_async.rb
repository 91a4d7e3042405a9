#!/usr/bin/env ruby
# frozen_string_literal: true
#
# bench/w4/echo_async.rb PORT - W4's Ruby peer: the async gem's own echo
# server (async-io 1.34, Async::IO::Endpoint, Debian's ruby-async-io), the
# same body as examples/echo_server.rb (one task per client, readpartial of
# up to 64 KiB, write, TCP_NODELAY). Prints "listening on 127.0.0.1:PORT".
require "async"
require "async/io"
require "socket"

port = Integer(ARGV.fetch(0, "7001"))
$stdout.sync = true
%w[INT TERM].each { |sig| Signal.trap(sig) { exit!(0) } }
endpoint = Async::IO::Endpoint.tcp("127.0.0.1", port, reuse_address: true)

Async do |task|
  task.async do
    endpoint.accept do |client|
      client.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
      buf = String.new(capacity: 65_536)
      while (chunk = client.readpartial(65_536, buf)) # nil at EOF (async-io)
        client.write(chunk)
      end
    rescue EOFError, Errno::ECONNRESET, Errno::EPIPE
      nil
    end
  end
  puts "listening on 127.0.0.1:#{port}"
end
