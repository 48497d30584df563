"""Knowledge gaps: declined and voted-down questions recorded by every front end, grouped by
meaning with the index's model (`dossier gaps`, `/gaps`)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.feedback import FeedbackStore
from bot.gaps import MAX_STORED_CHARS, GapQuestion, GapStore, find_gaps, group_threshold, parse_since
from bot.types import Answer, Turn
from devtools.fake_discord import ADMIN_ID, USER_ID, FakeDiscord, running_bot
from dossier_common.settings import Settings
from tests.test_discord import FakeEngine, make_bot, make_settings, passage

PASSWORD = [
    "How do I reset my password?",
    "I forgot my password, how can I change it?",
    "password reset steps?",
]
CONFERENCE = "When does the conference start?"
DAY = 86400.0


def fill(store: GapStore, questions: Sequence[str], at: float) -> None:
    for n, question in enumerate(questions):
        store.record(question, "cli", at=at + n)


def test_store_keeps_a_huge_question_cut_and_filters_by_date(tmp_path: Path) -> None:
    store = GapStore(tmp_path / "gaps.sqlite")
    store.record("x" * 10_000, "discord")
    store.record("   ", "cli")  # nothing to keep
    fill(store, ["old question"], at=time.time() - 10 * DAY)
    [(recent, _)] = store.declined(since=time.time() - DAY)
    assert recent == "x" * MAX_STORED_CHARS
    assert [q for q, _ in store.declined()] == ["old question", recent]


def test_voted_down_counts_answers_with_more_down_than_up_votes(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    for answer_id, question in (("a1", "liked"), ("a2", "disliked"), ("a3", "split")):
        store.save_answer(answer_id, question=question, answer="...")
    store.record("a1", 1, 1)
    store.record("a2", -1, 1)
    store.record("a2", -1, 2)
    store.record("a3", -1, 1)
    store.record("a3", 1, 2)
    assert [q for q, _ in store.voted_down()] == ["disliked"]
    assert store.voted_down(since=time.time() + 60) == []


def test_paraphrases_grouped_together_and_a_different_question_apart(embedder: Any) -> None:
    now = time.time()
    asked = [
        GapQuestion(q, now + n, "declined") for n, q in enumerate([PASSWORD[0], CONFERENCE, *PASSWORD[1:]])
    ]
    asked.append(GapQuestion(PASSWORD[0], now + 9, "voted down"))  # asked again, and voted down
    threshold = group_threshold(Settings(_env_file=None))  # type: ignore[call-arg]
    seen: list[str] = []

    def closest(question: str) -> list[dict[str, Any]]:
        seen.append(question)
        return [{"source": "faq.md", "location": "§ Accounts", "score": 0.3}]

    groups = find_gaps(asked, embedder.embed_query, threshold, closest)
    assert [g.count for g in groups] == [4, 1]
    first, second = (g.to_dict() for g in groups)
    assert set(first["questions"]) == set(PASSWORD) and first["example"] in PASSWORD
    assert (first["declined"], first["voted_down"]) == (3, 1)
    assert second["questions"] == [CONFERENCE]
    assert seen == [first["example"], CONFERENCE]  # the nearest passages of each group's example
    assert first["passages"] == [{"source": "faq.md", "location": "§ Accounts", "score": 0.3}]


def test_since_parses_dates_and_days() -> None:
    assert parse_since("2026-11-30") == parse_since("2026-11-30T00:00:00+00:00")
    assert abs((parse_since("7d") or 0) - (time.time() - 7 * DAY)) < 5
    assert parse_since(None) is None


def copy_index(report_index: Settings, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(report_index.home, home)
    return home


def test_cli_ask_records_declined_and_gaps_prints_json_and_csv(
    report_index: Settings, tmp_path: Path, dossier_cli: Any
) -> None:
    home = copy_index(report_index, tmp_path)
    for question in [*PASSWORD[:2], CONFERENCE, "Who founded Safeguard Defenders?"]:
        assert dossier_cli("ask", question, home=home).returncode == 0
    chat = dossier_cli("chat", home=home, stdin=PASSWORD[2] + "\n")  # the chat records them too
    assert chat.returncode == 0 and "don't" in chat.stdout
    # One old question, before --since
    GapStore(home / "gaps.sqlite").record("What is the refund policy?", "cli", at=time.time() - 30 * DAY)

    proc = dossier_cli("gaps", "--json", "--since", "7d", home=home)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"since", "groups"} and report["since"] == "7d"
    groups = report["groups"]
    assert [g["count"] for g in groups] == [3, 1]  # answered questions are no gap
    first = groups[0]
    assert set(first) == {"count", "example", "declined", "voted_down", "last_asked", "questions", "passages"}
    assert set(first["questions"]) == set(PASSWORD) and first["declined"] == 3 and first["voted_down"] == 0
    assert first["passages"] and {"source", "location", "score"} == set(first["passages"][0])
    assert groups[1]["questions"] == [CONFERENCE]

    everything = json.loads(dossier_cli("gaps", "--json", home=home).stdout)["groups"]
    assert sum(g["count"] for g in everything) == 5  # the old question too

    rows = list(csv.DictReader(io.StringIO(dossier_cli("gaps", "--csv", "--since", "7d", home=home).stdout)))
    assert [row["count"] for row in rows] == ["3", "1"]
    text = dossier_cli("gaps", home=home).stdout
    assert text.startswith("5 question(s) in 3 group(s)") and "nearest:" in text


def abstain(question: str, history: Sequence[Turn]) -> Answer:
    return Answer(question, "The documents don't say.", (), True, (passage(1),))


async def test_discord_records_declined_questions(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    bot = make_bot(settings, FakeEngine(abstain))
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("ask", {"question": "What is the capital of Mars?"})
        await fake_discord.wait_posted(lambda p: p.kind == "followup")
    assert [q for q, _ in GapStore.for_settings(settings).declined()] == ["What is the capital of Mars?"]


async def test_slash_gaps_for_admins_groups_paraphrases(
    fake_discord: FakeDiscord, tmp_path: Path, report_engine: Any
) -> None:
    settings = make_settings(tmp_path)
    fill(GapStore.for_settings(settings), [PASSWORD[0], CONFERENCE, PASSWORD[1], PASSWORD[2]], at=time.time())
    bot = make_bot(settings, report_engine)
    async with running_bot(fake_discord, bot):
        [sync] = fake_discord.calls_to("PUT", r"/applications/\d+/commands")
        await fake_discord.slash("gaps", user_id=USER_ID)
        [refusal] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
        await fake_discord.slash("gaps", user_id=ADMIN_ID)
        [report] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
    registered = next(c for c in sync.json if c["name"] == "gaps")
    assert int(registered["default_member_permissions"]) == 1 << 5 and registered["dm_permission"] is False
    assert refusal.ephemeral and "only admins" in refusal.content
    assert report.ephemeral and report.payload["allowed_mentions"]["parse"] == []
    text = report.content
    assert "4 questions in 2 groups" in text
    first, second = text.split("\n\n")[1:3]
    assert first.startswith("**3×**") and any(q in first for q in PASSWORD)
    assert "nearest: overseas-police-stations-canada.txt" in first
    assert second.startswith("**1×**") and CONFERENCE in second
