"""A busy help channel with auto-answers on: 100 messages, a third of them questions.

The real `DossierBot` logs in to the fake Discord of the test suite (devtools/fake_discord.py)
with `DISCORD_AUTO_CHANNELS` set to its help channel and answers from the real engine over the
report corpus (../shared/corpus, ingested into a temporary home). 100 messages arrive in a
seeded random order, 20 ms apart, from two users: 34 questions (the English questions of the
report dev sets, answerable and not, and a few off-topic ones) and 66 messages of chit-chat
(greetings, thanks, small talk shaped like questions, statements, some about the report).
A coroutine ticks every 50 ms on the bot's event loop and records the longest gap.

Figures: answers posted (to answerable / unanswerable questions), answers whose evidence is
below the auto-answer bar (must be 0), messages to anything that is not a question (must be
0), the event-loop gap (must be < 1 s).

    .venv/bin/python bench/discord_busy.py [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import ROOT, emit, make_embedder, table, temp_home, verdict
from concurrency import Heartbeat

from bot.evaluate import load_questions
from bot.types import Answer, Turn

EVAL = ROOT.parent / "shared" / "eval"
CORPUS = ROOT.parent / "shared" / "corpus"
GAP_TARGET = 1.0
SPACING = 0.02  # seconds between two messages

OFF_TOPIC = [  # questions the report cannot answer
    "What is the capital of Australia?",
    "How do I reset my Discord password?",
    "What time does the meetup start tomorrow?",
    "Which laptop should I buy for programming?",
]
CHATTER = [
    "good morning everyone!",
    "hi all",
    "hello hello",
    "thanks, that helped a lot",
    "thank you!",
    "thx",
    "lol",
    "haha nice",
    "ok",
    "cool",
    "how are you all?",
    "anyone here?",
    "what's up?",
    "how's it going?",
    "are you there?",
    "really?",
    "why not",
    "See you tomorrow.",
    "I'm heading out for lunch.",
    "The report came out in September.",
    "Safeguard Defenders published a report on the stations.",
    "The RCMP said it is investigating.",
    "There are three stations in the Toronto area.",
    "Operation Fox Hunt was part of Sky Net.",
    "Dahlin thinks there are more stations.",
    "I read the whole article last night.",
    "That was a long meeting.",
    "Welcome to the new members!",
    "Please keep this channel on topic.",
    "I agree with you.",
    "Same here.",
    "+1",
    "What a day.",
    "Great work on the summary, everyone.",
    "I will check the documents later.",
    "Coffee time.",
    "brb",
    "gn",
    "Happy Friday!",
    "Good point.",
    "I'll look into it.",
    "Nice weather today.",
    "Let's discuss this in the meeting.",
    "The link is in the pinned messages.",
    "Got it, thanks.",
    "I think the article is from a Canadian outlet.",
    "Congrats on the launch!",
    "Sounds good to me.",
    "I'm new here, hello!",
    "This channel is busy today.",
    "Back from lunch.",
    "I have read the report twice.",
    "Interesting article.",
    "I'll be offline this afternoon.",
    "Thanks for the quick reply.",
    "No worries.",
    "Will do.",
    "Makes sense.",
    "The stations were in 53 countries.",
    "Canada has more stations than expected.",
    "Mission accomplished.",
    "Cheers!",
    "Night all.",
    "Ok, one more thing later.",
    "Fair enough.",
    "Yes, exactly.",
]


class RecordingEngine:
    """The real engine, recording each question's evidence (called from worker threads)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.asked: dict[str, Answer] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def ask(self, question: str, history: Sequence[Turn] = (), **kwargs: Any) -> Answer:
        answer = self.engine.ask(question, history, **kwargs)
        with self._lock:
            self.asked[question] = answer
        return answer


def questions() -> tuple[list[str], list[str]]:
    """(answerable, unanswerable) English questions of the report dev sets, plus off-topic ones."""
    answerable, unanswerable = [], []
    for path in sorted(EVAL.glob("report-*dev.jsonl")):
        if "zh" in path.stem:
            continue
        for q in load_questions(path):
            (answerable if q.answerable else unanswerable).append(q.question)
    return answerable, unanswerable + OFF_TOPIC


async def run(home: Path, seed: int) -> dict[str, Any]:
    from bot.discord_bot import DossierBot
    from bot.engine import Engine
    from devtools.fake_discord import ADMIN_ID, HELP_CHANNEL_ID, USER_ID, running_bot, serving
    from dossier_common.settings import Settings
    from ingest.pipeline import ingest_paths

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        home=home,
        discord_token="fake-bot-token",
        discord_auto_channels=[HELP_CHANNEL_ID],
        discord_rate_limit=1000,
    )
    embedder = make_embedder()
    await asyncio.to_thread(ingest_paths, [CORPUS], settings, embedder)
    engine = RecordingEngine(Engine(settings, embedder=embedder))
    await asyncio.to_thread(engine.engine.warm)
    answerable, unanswerable = questions()
    kind = {q: "answerable" for q in answerable} | {q: "unanswerable" for q in unanswerable}
    kind |= {c: "chatter" for c in CHATTER}
    messages = answerable + unanswerable + CHATTER
    random.Random(seed).shuffle(messages)

    sent: dict[int, str] = {}  # message id -> text
    async with serving() as fake:
        bot = DossierBot(settings, engine, guild_ready_timeout=0.05)
        async with running_bot(fake, bot):
            with Heartbeat() as beat:
                for i, text in enumerate(messages):
                    author = USER_ID if i % 2 else ADMIN_ID
                    msg = await fake.send_message(
                        text, author_id=author, channel_id=HELP_CHANNEL_ID, mention_bot=False
                    )
                    sent[int(msg["id"])] = text
                    await asyncio.sleep(SPACING)
                # Wait until no answer is being computed or posted any more.
                quiet = 0
                while quiet < 10:
                    before = (len(engine.asked), len(fake.posted), len(fake.calls))
                    await asyncio.sleep(0.2)
                    quiet = (
                        quiet + 1 if before == (len(engine.asked), len(fake.posted), len(fake.calls)) else 0
                    )
            gap = beat.max_gap
        posts = list(fake.posted)

    bar = settings.auto_answer_bar
    # A thread on a message has the message's id; an answer in several messages counts once.
    answers = list({p.channel_id: p for p in posts if p.channel_id in sent}.values())
    stray = [p for p in posts if p.channel_id not in sent]  # in the channel itself, or anywhere else
    answered = [sent[p.channel_id] for p in answers]
    weak = [
        q for q in answered if (a := engine.asked.get(q)) is None or a.evidence is None or a.evidence < bar
    ]
    asked_kinds = [kind.get(q, "?") for q in engine.asked]
    return {
        "messages": len(messages),
        "questions": len(answerable) + len(unanswerable),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "chatter": len(CHATTER),
        "asked_engine": len(engine.asked),
        "asked_engine_chatter": asked_kinds.count("chatter"),
        "answers_posted": len(answers),
        "answered_answerable": sum(1 for q in answered if kind[q] == "answerable"),
        "answered_unanswerable": sum(1 for q in answered if kind[q] == "unanswerable"),
        "answers_with_weak_evidence": len(weak),
        "messages_to_non_questions": sum(1 for q in answered if kind[q] == "chatter") + len(stray),
        "event_loop_gap_s": gap,
        "bar": bar,
        "answered": sorted(answered),
        "silent_answerable": sorted(q for q in answerable if q not in answered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with temp_home() as home:
        figures = asyncio.run(run(home, args.seed))
    table(
        "Busy help channel (auto-answers on)",
        ["figure", "value", "target"],
        [
            [
                "messages (questions / chit-chat)",
                f"{figures['messages']} ({figures['questions']} / {figures['chatter']})",
                "",
            ],
            [
                "questions answerable / unanswerable",
                f"{figures['answerable']} / {figures['unanswerable']}",
                "",
            ],
            ["messages the engine was asked", figures["asked_engine"], ""],
            ["  of them chit-chat", figures["asked_engine_chatter"], ""],
            ["answers posted", figures["answers_posted"], ""],
            ["  to answerable questions", figures["answered_answerable"], ""],
            ["  to unanswerable questions", figures["answered_unanswerable"], "0"],
            ["answers with weak evidence (< bar)", figures["answers_with_weak_evidence"], "0"],
            ["messages to non-questions", figures["messages_to_non_questions"], "0"],
            ["event-loop gap (s)", round(figures["event_loop_gap_s"], 3), f"< {GAP_TARGET}"],
            ["auto-answer bar", figures["bar"], ""],
        ],
        digits=3,
    )
    print("\nanswered:", *figures["answered"], sep="\n  ")
    print("\nanswerable but left silent:", *figures["silent_answerable"], sep="\n  ")
    ok = (
        figures["answers_with_weak_evidence"] == 0
        and figures["messages_to_non_questions"] == 0
        and figures["event_loop_gap_s"] < GAP_TARGET
    )
    print(f"\nbars: {verdict(ok)}")
    emit("discord_busy", {k: v for k, v in figures.items() if k not in ("answered", "silent_answerable")})


if __name__ == "__main__":
    main()
