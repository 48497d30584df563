"""Knowledge gaps: the questions the documents could not answer, grouped, so a maintainer
knows which document to write next.

Two sources feed it: the questions a front end declined (recorded here, in `gaps.sqlite`
under DOSSIER_HOME, by `GapStore.record`) and the answers voted down more than up (read from
the feedback store at report time, so a vote changed later is taken into account). Nothing
identifies the asker: a declined question is kept with its time and the front end only.

Questions are grouped by meaning with the index's own embedding model: each question joins
the group whose centroid is nearest, if the cosine reaches a threshold, or starts a group
(measured in bench/gaps_threshold.py). Each group is then shown with its count, its most
typical question and the passages closest to it.
"""

from __future__ import annotations

import csv
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from bot.feedback import FeedbackStore
from dossier_common.errors import ConfigError, DossierError
from dossier_common.settings import DEFAULT_MODEL, Settings, model_name
from index.layout import Layout

log = logging.getLogger(__name__)

# A question is kept up to this many characters: a pasted log is a question too, not an error.
MAX_STORED_CHARS = 2000
DECLINED = "declined"
VOTED_DOWN = "voted down"
# Cosine at or above which a question joins a group, per embedding model. bench/gaps_threshold.py
# (12 groups of paraphrases among 30 different questions about the same report): with
# all-MiniLM-L6-v2 the best pair-counting F1 is 0.565, at 0.55 and at 0.60; 0.60 merges fewer
# different questions (precision 0.46 vs 0.42). The model separates poorly: questions naming the
# same organisation reach 0.85 while some paraphrases stay at 0.41, so groups are a guide.
GROUP_THRESHOLDS = {DEFAULT_MODEL: 0.60}
DEFAULT_GROUP_THRESHOLD = 0.60
CLOSEST_PASSAGES = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS declined (
    question  TEXT NOT NULL,
    front_end TEXT NOT NULL,   -- "cli", "chat", "discord"
    asked_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS declined_asked_at ON declined (asked_at);
"""


def group_threshold(settings: Settings) -> float:
    """DOSSIER_GAPS_THRESHOLD when set, else the embedding model's measured value."""
    if settings.gaps_threshold is not None:
        return settings.gaps_threshold
    return GROUP_THRESHOLDS.get(model_name(settings.embedding_model), DEFAULT_GROUP_THRESHOLD)


class GapStore:
    """The declined questions, in SQLite; each call opens its own connection (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_settings(cls, settings: Settings) -> GapStore:
        return cls(Layout(settings.home).gaps)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=10)) as conn:
            conn.executescript(_SCHEMA)
            with conn:
                yield conn

    def record(self, question: str, front_end: str, *, at: float | None = None) -> None:
        """Remember a question that was declined (cut to MAX_STORED_CHARS)."""
        question = " ".join(question.split())[:MAX_STORED_CHARS]
        if not question:
            return
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO declined VALUES (?, ?, ?)",
                (question, front_end, time.time() if at is None else at),
            )

    def declined(self, since: float | None = None) -> list[tuple[str, float]]:
        """(question, when) of each declined question asked at or after `since`, oldest first."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT question, asked_at FROM declined WHERE asked_at >= ? ORDER BY asked_at, rowid",
                (since if since is not None else float("-inf"),),
            ).fetchall()
        return [(str(q), float(t)) for q, t in rows]


def record_declined(store: GapStore, question: str, front_end: str) -> None:
    """`store.record`, never failing the answer it follows (a full disk is logged)."""
    try:
        store.record(question, front_end)
    except (sqlite3.Error, OSError) as err:
        log.warning("could not record a declined question: %s", err)


# -- grouping -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GapQuestion:
    text: str
    at: float
    reason: str  # DECLINED or VOTED_DOWN


@dataclass
class GapGroup:
    """Questions that ask the same thing, with the passages nearest to them."""

    example: str
    questions: list[GapQuestion]
    passages: list[dict[str, Any]] = field(default_factory=list)  # {source, location, score}

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def last_asked(self) -> float:
        return max(q.at for q in self.questions)

    def why(self) -> str:
        """Why its questions are here, in words: "2 declined, 1 voted down"."""
        counts = ((DECLINED, "declined"), (VOTED_DOWN, "voted down"))
        return ", ".join(
            f"{n} {label}"
            for reason, label in counts
            if (n := sum(q.reason == reason for q in self.questions))
        )

    def to_dict(self) -> dict[str, Any]:
        distinct = list(dict.fromkeys(q.text for q in self.questions))
        return {
            "count": self.count,
            "example": self.example,
            "declined": sum(q.reason == DECLINED for q in self.questions),
            "voted_down": sum(q.reason == VOTED_DOWN for q in self.questions),
            "last_asked": iso(self.last_asked),
            "questions": distinct,
            "passages": self.passages,
        }


def iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def group_by_meaning(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Row indexes of `vectors` (unit length) in groups: each row joins the group whose
    centroid is the most similar, when the cosine reaches `threshold`, or starts a new one.
    Rows are taken in order, so the result is deterministic."""
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    for row, vector in enumerate(vectors):
        best, best_cos = -1, threshold
        for g, total in enumerate(sums):
            norm = float(np.linalg.norm(total)) or 1.0
            cos = float(vector @ total) / norm
            if cos >= best_cos:
                best, best_cos = g, cos
        if best < 0:
            groups.append([row])
            sums.append(vector.astype(np.float64).copy())
        else:
            groups[best].append(row)
            sums[best] += vector
    return groups


def find_gaps(
    questions: Sequence[GapQuestion],
    embed: Callable[[str], Sequence[float]],
    threshold: float,
    closest: Callable[[str], list[dict[str, Any]]] | None = None,
) -> list[GapGroup]:
    """Group `questions` by meaning, biggest groups first (then the most recently asked);
    each with its most typical question and, with `closest`, the passages nearest to it."""
    if not questions:
        return []
    texts = list(dict.fromkeys(q.text for q in questions))
    unit = np.array([_unit(embed(text)) for text in texts], dtype=np.float64)
    row_of = {text: n for n, text in enumerate(texts)}
    result = []
    for members in group_by_meaning(unit, threshold):
        centroid = unit[members].mean(axis=0)
        example = texts[max(members, key=lambda m: float(unit[m] @ centroid))]
        chosen = {texts[m] for m in members}
        result.append(GapGroup(example, [q for q in questions if q.text in chosen]))
    result.sort(key=lambda g: (-g.count, -g.last_asked, row_of[g.example]))
    if closest is not None:
        for group in result:
            group.passages = closest(group.example)
    return result


def _unit(vector: Sequence[float]) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v


# -- the report ---------------------------------------------------------------------------------


def gap_questions(settings: Settings, since: float | None = None) -> list[GapQuestion]:
    """Every declined or voted-down question since `since`, oldest first."""
    declined = [GapQuestion(q, t, DECLINED) for q, t in GapStore.for_settings(settings).declined(since)]
    voted = [GapQuestion(q, t, VOTED_DOWN) for q, t in FeedbackStore.for_settings(settings).voted_down(since)]
    return sorted(declined + voted, key=lambda q: q.at)


def closest_passages(engine: Any, k: int = CLOSEST_PASSAGES) -> Callable[[str], list[dict[str, Any]]]:
    """A `closest` for `find_gaps` over the engine's index (none when nothing is indexed)."""

    def closest(question: str) -> list[dict[str, Any]]:
        try:
            passages = engine.retrieve(question, k)
        except DossierError:  # no index yet: the gaps are still worth showing
            return []
        return [{"source": p.source, "location": p.location, "score": round(p.score, 4)} for p in passages]

    return closest


def gap_report(settings: Settings, engine: Any, since: float | None = None) -> list[GapGroup]:
    """`dossier gaps` and `/gaps`: the groups, embedded with the index's model."""
    questions = gap_questions(settings, since)
    if not questions:
        return []
    return find_gaps(
        questions, engine.embedder.embed_query, group_threshold(settings), closest_passages(engine)
    )


def parse_since(text: str | None) -> float | None:
    """`--since`: an ISO date or date-time (UTC unless it says otherwise), or N days ("7d")."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text[:-1].isdigit() and text[-1:].lower() == "d":
        return time.time() - int(text[:-1]) * 86400
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since takes a date like 2026-11-30 or a number of days like 7d, not {text!r}."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


CSV_FIELDS = ("count", "example", "declined", "voted_down", "last_asked", "questions", "passages")


def write_gaps_csv(groups: Sequence[GapGroup], out: TextIO) -> None:
    """One row per group; its questions joined by " | ", passages as "source (location)"."""
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for group in groups:
        row = group.to_dict()
        row["questions"] = " | ".join(row["questions"])
        row["passages"] = "; ".join(f"{p['source']} ({p['location']})" for p in group.passages)
        writer.writerow(row)
