"""50 questions at once through the Discord bot's answering path, with an event-loop heartbeat.

Three runs over the same synthetic 10k-chunk index (bench/synth.py), each with a coroutine
ticking every 50 ms on the event loop and recording the longest gap between its ticks (a
blocked loop is what makes a Discord bot miss gateway heartbeats and look dead):

- executor, warm: `DossierBot.compute_answer` (the bot's own method: a semaphore of
  `DOSSIER_DISCORD_MAX_CONCURRENT` slots, then `asyncio.to_thread(engine.ask)`) called 50
  times at once on a warmed-up engine;
- executor, cold (run first, in a process that has not imported torch yet): the same on a
  fresh engine, so the first questions also import torch, load the model, open Chroma and
  build the keyword index in worker threads, as in a bot that was just started;
- Discord, warm: the real `DossierBot` logged in to the fake Discord of the test suite
  (devtools/fake_discord.py: gateway and REST on 127.0.0.1), 50 @mentions dispatched at once;
  latency runs from the MESSAGE_CREATE to the answer posted in the question's thread.

The rate limit is raised to 1,000 a minute for the run (the 50 questions come from one test
user); everything else is the default settings (2 concurrent answers).

    .venv/bin/python bench/concurrency.py [--quick] [--questions N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Timer, emit, export_into, load_questions, log, settings_for, table, verdict

from bot.evaluate import percentile

TICK = 0.05
TARGET_GAP = 1.0


class Heartbeat:
    """Ticks every 50 ms on the running loop; remembers the longest interval between ticks."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(TICK)
            now = loop.time()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            last = now

    def __enter__(self) -> Heartbeat:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def summary(latencies: list[float], wall: float, beat: Heartbeat, answered: int) -> dict[str, Any]:
    return {
        "questions": len(latencies),
        "answered": answered,
        "wall_s": round(wall, 2),
        "throughput_qps": round(len(latencies) / wall, 2),
        "p50_s": round(percentile(latencies, 50), 2),
        "p95_s": round(percentile(latencies, 95), 2),
        "max_s": round(max(latencies), 2),
        "max_heartbeat_gap_s": round(beat.max_gap, 3),
        "ticks": beat.ticks,
    }


async def executor_run(home: Path, questions: list[str], warm: bool) -> dict[str, Any]:
    from bot.discord_bot import DossierBot
    from bot.engine import Engine

    settings = settings_for(home, discord_rate_limit=1000)
    engine = Engine(settings)
    if warm:
        await asyncio.to_thread(engine.ask, "Where should a startup be located?")
    bot = DossierBot(settings, engine)  # not logged in: only its answering path is used
    latencies: list[float] = []

    async def one(q: str) -> Any:
        t = time.perf_counter()
        answer = await bot.compute_answer(q, ())
        latencies.append(time.perf_counter() - t)
        return answer

    try:
        with Heartbeat() as beat, Timer() as wall:
            answers = await asyncio.gather(*(one(q) for q in questions))
    finally:
        await bot.close()
        engine.close()
    return summary(latencies, wall.wall, beat, sum(1 for a in answers if a.text))


async def discord_run(home: Path, questions: list[str]) -> dict[str, Any]:
    from bot.discord_bot import DossierBot
    from bot.engine import Engine
    from devtools.fake_discord import TOKEN, running_bot, serving

    logging.getLogger("discord").setLevel(logging.WARNING)
    settings = settings_for(
        home, discord_token=TOKEN, discord_rate_limit=1000, discord_guild_ids=[], discord_channel_ids=[]
    )
    engine = Engine(settings)
    await asyncio.to_thread(engine.ask, "Where should a startup be located?")
    try:
        async with serving() as server:
            bot = DossierBot(settings, engine, guild_ready_timeout=0.05)
            async with running_bot(server, bot, timeout=30):
                sent: dict[int, float] = {}
                with Heartbeat() as beat, Timer() as wall:
                    for q in questions:
                        msg = await server.send_message(q)
                        sent[int(msg["id"])] = time.monotonic()

                    def answered() -> dict[int, float] | None:
                        done = {
                            p.channel_id: p.call.at
                            for p in server.posted
                            if p.custom_ids and p.channel_id in sent
                        }
                        return done if len(done) >= len(sent) else None

                    done = await server.wait_until(answered, timeout=600)
                latencies = [done[m] - t for m, t in sent.items()]
    finally:
        engine.close()
    result = summary(latencies, wall.wall, beat, len(done))
    result["queued_notices"] = sum(1 for p in server.posted if "queued" in p.content)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small base's 10k index, 20 questions")
    parser.add_argument("--questions", type=int, default=None)
    args = parser.parse_args()
    n = args.questions or (20 if args.quick else 50)
    pool = [q["question"] for q in load_questions()]
    questions = (pool * (n // len(pool) + 1))[:n]

    from synth import copy_home, synthetic_home

    cached = synthetic_home(10000, args.quick)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dossier-bench-conc-") as tmp:
        home = copy_home(cached, Path(tmp) / "home")
        export_into(home)
        # Cold first: nothing in this process has imported torch or loaded the model yet.
        log("executor, cold")
        results["executor_cold"] = asyncio.run(executor_run(home, questions, warm=False))
        log("executor, warm")
        results["executor_warm"] = asyncio.run(executor_run(home, questions, warm=True))
        log("discord (fake gateway), warm")
        results["discord_warm"] = asyncio.run(discord_run(home, questions))

    labels = {
        "executor_cold": "executor (compute_answer), cold process",
        "executor_warm": "executor (compute_answer), warm",
        "discord_warm": "DossierBot + fake Discord, warm",
    }
    rows = [
        [
            labels[k],
            r["questions"],
            r["answered"],
            r["wall_s"],
            r["throughput_qps"],
            r["p50_s"],
            r["p95_s"],
            r["max_heartbeat_gap_s"],
            verdict(r["max_heartbeat_gap_s"] < TARGET_GAP),
        ]
        for k, r in results.items()
    ]
    table(
        f"{n} questions at once, 10k chunks, 2 answer slots (DOSSIER_DISCORD_MAX_CONCURRENT)",
        ["run", "asked", "answered", "wall s", "q/s", "p50 s", "p95 s", "max gap s", "gap < 1 s"],
        rows,
        digits=2,
    )
    emit(
        "concurrency",
        {
            "quick": args.quick,
            "results": results,
            "targets": {k: r["max_heartbeat_gap_s"] < TARGET_GAP for k, r in results.items()},
        },
    )


if __name__ == "__main__":
    main()
