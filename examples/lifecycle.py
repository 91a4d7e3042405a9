# Lesson 2, rill.run against the explicit loop, in Python (asyncio's two
# ways to drive a loop, on rill's loop):
# (a) rill.run(main()) (asyncio.run): a new loop, main run to its end, the
#     tasks left cancelled and run down, the loop closed.
# (b) the explicit path (asyncio's loop object): rill.new_event_loop(), run
#     until one task is done, run again so that a task started in the first
#     run finishes in the second, stop run_forever from a callback, close.
#     Once rill is installed (rill.install()), asyncio.new_event_loop() and
#     asyncio.get_event_loop() hand out this same kind of loop.
# (c) misuse, each refused: the exception's class is printed.
# Output: examples/lessons/lifecycle.txt, whose codes (RILL_ECLOSED,
# RILL_EBUSY) read as what Python raises for them (RuntimeError).
import asyncio

import rill

# -- (a) --


async def leftover():
    try:
        await rill.sleep(10)
    except rill.CancelledError:
        print("run: leftover task cancelled at shutdown")
        raise


async def run_main():
    print("run: main started")
    rill.create_task(leftover())
    await rill.sleep(0)  # let it start: a task cancelled before it starts never runs
    print("run: main returns")
    return 42


print(f"run: returned {rill.run(run_main())}, the loop is gone")

# -- (b) --


async def sleeper(seconds, result):
    await rill.sleep(seconds)
    return result


def yes_no(b):
    return "yes" if b else "no"


rill.install()  # asyncio's policy now makes rill loops
loop = asyncio.new_event_loop()
assert isinstance(loop, rill.EventLoop), loop
print(f"loop: created (running: {yes_no(loop.is_running())}, closed: {yes_no(loop.is_closed())})")
first = loop.create_task(sleeper(0.05, 1))
slow = loop.create_task(sleeper(0.2, 2))
r = loop.run_until_complete(first)
print(f"loop: first -> {r}, slow still pending: {yes_no(not slow.done())}")
r = loop.run_until_complete(slow)
print(f"loop: slow -> {r} (started in the first run, finished in the second)")
stopped = []
loop.call_later(0.05, lambda: (stopped.append(True), loop.stop()))
loop.run_forever()
if stopped:
    print("loop: run_forever stopped by a callback")
loop.close()
print(f"loop: closed (closed: {yes_no(loop.is_closed())})")

# -- (c) --


def raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the lesson prints what was raised
        return type(e).__name__
    return "accepted"


print(f"misuse: run_until on a closed loop -> {raised(lambda: loop.run_until_complete(first))}")
print(f"misuse: call_soon on a closed loop -> {raised(lambda: loop.call_soon(print))}")


async def misuse_inside():
    running = asyncio.get_event_loop()  # inside a task: the running loop
    print(f"misuse: running a loop that already runs -> {raised(running.run_forever)}")
    print(f"misuse: closing a running loop -> {raised(running.close)}")


other = asyncio.new_event_loop()
other.run_until_complete(misuse_inside())
other.close()
