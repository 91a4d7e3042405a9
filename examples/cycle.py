# Lesson 1, the loop's cycle, in Python: a callback (call_soon), two timers
# (call_later), a task that sleeps and a task that awaits a pipe's
# readability (add_reader, asyncio's way to watch a file descriptor),
# registered on one loop; each prints when the loop runs it. The order is
# the one every language prints: examples/lessons/cycle.txt (about 0.30 s).
import os

import rill


async def sleeper():
    print("task: started")
    await rill.sleep(0.15)
    print("task: woke after sleep(0.15)")


async def reader(fd):
    print("reader: waiting for the pipe")
    loop = rill.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(fd, readable.set_result, None)  # an I/O watcher
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    print(f"reader: the pipe is readable, read '{os.read(fd, 1).decode()}'")


async def main():
    loop = rill.get_running_loop()
    r, w = os.pipe()
    fired = loop.create_future()

    def late():
        print("timer: call_later(0.30) fired")
        fired.set_result(None)

    def write_x():
        if os.write(w, b"x") == 1:
            print("timer: wrote 'x' to the pipe")

    # Registered in this order; the transcript shows the order they run in.
    loop.call_later(0.30, late)
    loop.call_soon(print, "callback: call_soon ran")
    t = rill.create_task(sleeper())
    rd = rill.create_task(reader(r))
    loop.call_later(0.05, write_x)
    try:
        await rill.gather(t, rd, fired)
        print("main: done")
    finally:
        os.close(r)
        os.close(w)


rill.run(main())
