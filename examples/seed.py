# The seed example in Python: two tasks that print, sleep one second, print
# again, gathered by a main task. Finishes in about one second, not two.
import rill


async def task(name):
    print(f"Task {name} started")
    await rill.sleep(1)          # yields control to the event loop
    print(f"Task {name} finished")


async def main():
    await rill.gather(task("A"), task("B"))


rill.run(main())                 # prints A started, B started, A finished, B finished; ~1.0 s, not 2
