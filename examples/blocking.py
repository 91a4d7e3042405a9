# Lesson 3, blocking against non-blocking, in Python: the seed's two tasks,
# A and B, each "work for 1 s", gathered, three ways:
#   - A blocks in time.sleep: the whole loop stops with it, B's one second
#     starts after A's: 2 s;
#   - both await rill.sleep: the loop runs the other meanwhile: 1 s;
#   - A moves its blocking work to the thread pool (rill.to_thread) and
#     awaits it: 1 s.
# In debug mode (RILL_DEBUG=1, rill.run(..., debug=True) or
# loop.set_debug(True)) the blocked step is reported once on stderr, as
# asyncio does: "Executing <Task A (entry: blocking_worker() done, defined
# at .../blocking.py:N)> took 1.001 seconds"; the threshold is the loop's
# slow_callback_duration (0.1 s by default).
# Output: examples/lessons/blocking.txt, times within 0.3 s.
import time

import rill


async def blocking_worker():
    time.sleep(1)  # the loop cannot run anything meanwhile


async def sleeping_worker():
    await rill.sleep(1)  # yields to the loop for one second


async def threaded_worker():
    await rill.to_thread(time.sleep, 1)  # on a pool thread: the loop goes on


async def gather_a_and_b(worker_of_a):
    rill.get_running_loop().slow_callback_duration = 0.5  # report steps longer than 0.5 s
    a = rill.create_task(worker_of_a(), name="A")
    b = rill.create_task(sleeping_worker(), name="B")
    await rill.gather(a, b)


for label, worker in [
    ("blocking (time.sleep in a task)", blocking_worker),
    ("non-blocking (rill.sleep)", sleeping_worker),
    ("thread pool (rill.to_thread)", threaded_worker),
]:
    t0 = time.monotonic()
    rill.run(gather_a_and_b(worker))
    print(f"{label}: {time.monotonic() - t0:.1f} s", flush=True)
