"""Evidence scores of answerable and unanswerable questions: where to put the auto-answer bar.

The report corpus (../shared/corpus) is ingested into a temporary home; every question of the
report dev sets (../shared/eval/*.jsonl) is asked through `Engine.ask`, and its evidence score
(`Answer.evidence`: the best sentence score, what the abstention threshold is compared with)
is printed beside whether it is answerable, whether the bot declined, and whether its answer
is correct. Then, for a range of bars, how many questions an auto-answer would take:
answered correctly, answered wrongly (a graded answerable question answered wrong), and
unanswerable questions answered (the bar must leave none).

    .venv/bin/python bench/auto_answer_threshold.py
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import ROOT, emit, make_embedder, table, temp_home

from bot.evaluate import is_correct, load_questions
from dossier_common.settings import Settings

EVAL = ROOT.parent / "shared" / "eval"
CORPUS = ROOT.parent / "shared" / "corpus"
BARS = (0.37, 0.40, 0.42, 0.45, 0.48, 0.50, 0.52, 0.55, 0.60)


def measure(home: Path) -> list[dict[str, Any]]:
    from bot.engine import Engine
    from ingest.pipeline import ingest_paths

    settings = Settings(_env_file=None, home=home)  # type: ignore[call-arg]
    embedder = make_embedder()
    ingest_paths([CORPUS], settings, embedder)
    engine = Engine(settings, embedder=embedder)
    rows = []
    for path in sorted(EVAL.glob("*.jsonl")):
        for q in load_questions(path):
            answer = engine.ask(q.question)
            correct = is_correct(answer.text, q.answers) if q.answers and not answer.abstained else None
            rows.append(
                {
                    "set": path.stem,
                    "id": q.id,
                    "answerable": q.answerable,
                    "abstained": answer.abstained,
                    "correct": correct,
                    "evidence": answer.evidence,
                    "question": q.question,
                }
            )
    engine.close()
    return rows


def at_bar(rows: list[dict[str, Any]], bar: float) -> dict[str, Any]:
    """What auto-answers would do at `bar`: answered = not declined and evidence >= bar."""
    taken = [r for r in rows if not r["abstained"] and r["evidence"] is not None and r["evidence"] >= bar]
    return {
        "bar": bar,
        "answered": len(taken),
        "correct": sum(1 for r in taken if r["correct"] is True),
        "wrong": sum(1 for r in taken if r["correct"] is False),
        "unanswerable_answered": sum(1 for r in taken if not r["answerable"]),
        "answerable_left": sum(1 for r in rows if r["answerable"]) - sum(1 for r in taken if r["answerable"]),
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    with temp_home() as home:
        rows = measure(home)
    rows.sort(key=lambda r: -(r["evidence"] if r["evidence"] is not None else -1))
    table(
        "Evidence per question (best first)",
        ["set", "id", "answerable", "declined", "correct", "evidence", "question"],
        [
            [
                r["set"],
                r["id"],
                r["answerable"],
                r["abstained"],
                r["correct"],
                r["evidence"],
                r["question"][:60],
            ]
            for r in rows
        ],
        digits=3,
    )
    sweep = [at_bar(rows, bar) for bar in BARS]
    table(
        "Auto-answers at each bar",
        ["bar", "answered", "correct", "wrong", "unanswerable answered", "answerable left silent"],
        [list(s.values()) for s in sweep],
        digits=2,
    )
    unanswerable = [r["evidence"] for r in rows if not r["answerable"] and r["evidence"] is not None]
    wrong = [r["evidence"] for r in rows if r["correct"] is False and r["evidence"] is not None]
    print(f"\nhighest evidence of an unanswerable question: {max(unanswerable, default=float('nan')):.3f}")
    print(f"highest evidence of a wrong answer: {max(wrong, default=float('nan')):.3f}")
    emit(
        "auto_answer_threshold",
        {
            "questions": len(rows),
            "max_unanswerable_evidence": max(unanswerable, default=None),
            "max_wrong_answer_evidence": max(wrong, default=None),
            "sweep": sweep,
        },
    )


if __name__ == "__main__":
    main()
