"""The cross-language conformance scenarios (tests/conformance/transcript.txt)
in Python: the group's error order and a task cancelled before its first
step. Run against rill and (RILL_TEST_IMPL=asyncio) against asyncio, so the
transcript is asyncio's behaviour."""
import os
import unittest

from common import aio

TRANSCRIPT = os.path.join(os.path.dirname(__file__), "..", "conformance", "transcript.txt")


def expected_lines():
    with open(TRANSCRIPT) as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


async def scenarios(lines):
    async def c1():
        await aio.sleep(0.01)
        raise ValueError("c1")

    async def c2():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            raise ValueError("c2")

    async def c3():
        await aio.sleep(10)

    t3 = None
    try:
        async with aio.TaskGroup() as tg:
            tg.create_task(c1())
            tg.create_task(c2())
            t3 = tg.create_task(c3())
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                raise ValueError("body")
    except BaseExceptionGroup as eg:
        lines.append("errors: " + " ".join(str(e) for e in eg.exceptions))
    lines.append("c3: " + ("cancelled" if t3.cancelled() else "not cancelled"))

    ran = []

    async def early():
        ran.append(True)

    t = aio.get_running_loop().create_task(early())
    t.cancel()
    try:
        await t
    except aio.CancelledError:
        pass
    lines.append("early: %s, %s" % ("ran" if ran else "never ran",
                                    "cancelled" if t.cancelled() else "not cancelled"))


class Conformance(unittest.TestCase):
    def test_transcript(self):
        lines = []
        aio.run(scenarios(lines))
        self.assertEqual(lines, expected_lines())


if __name__ == "__main__":
    unittest.main()
