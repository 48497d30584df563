"""The cosine at which `dossier gaps` puts two questions in one group (bot/gaps.py).

Groups of paraphrases (written for this benchmark: the same question asked three or four
ways, as people in a help channel would) are mixed with the different questions of the
report eval sets, which ask about the same documents and so are the hard cases. For each
threshold the questions are grouped exactly as `dossier gaps` groups them, and scored by
pair counting: precision (pairs put together that are paraphrases), recall (paraphrase
pairs put together), F1. Also printed: the cosines of paraphrase pairs and of pairs of
different questions.

    .venv/bin/python bench/gaps_threshold.py
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit
from bot.gaps import group_by_meaning

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"

PARAPHRASES = [
    [
        "How do I reset my password?",
        "I forgot my password, how can I change it?",
        "What's the way to recover a lost password?",
        "password reset steps?",
    ],
    [
        "Does the bot work in direct messages?",
        "Can I DM the bot instead of asking in a channel?",
        "Will it answer me in private messages?",
    ],
    [
        "How much does the premium plan cost?",
        "What is the price of premium?",
        "premium subscription pricing per month?",
    ],
    [
        "Which countries closed their Chinese police stations?",
        "What countries shut down the overseas police stations?",
        "Where were the police stations closed by the authorities?",
    ],
    [
        "How do I install it on Windows?",
        "Installation instructions for Windows please",
        "Can I set this up on a Windows PC?",
    ],
    [
        "Who funds Safeguard Defenders?",
        "Where does Safeguard Defenders get its money?",
        "Who pays for Safeguard Defenders' work?",
    ],
    [
        "Is there an API to export my data?",
        "How can I export all my data?",
        "Can I download a copy of my data?",
    ],
    [
        "What did the Dutch government do about the stations?",
        "How did the Netherlands respond to the police stations?",
        "What was the Dutch reaction to the Chinese police posts?",
    ],
    [
        "Why is the bot so slow to answer?",
        "The bot takes ages to reply, why?",
        "answers are really slow, is something wrong?",
    ],
    [
        "How many people were persuaded to return to China?",
        "How many fugitives were convinced to go back to China?",
        "What number of people returned to China because of persuasion?",
    ],
    [
        "Can I change the language of the answers?",
        "Is it possible to get answers in French?",
        "How do I make it reply in another language?",
    ],
    [
        "When does the conference start?",
        "What is the start date of the conference?",
        "conference opening day?",
    ],
]


def eval_questions() -> list[str]:
    out: list[str] = []
    for name in ("report-dev.jsonl", "report-open-dev.jsonl"):
        path = EVAL / name
        if path.exists():
            out += [
                json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line
            ]
    return out


def pair_scores(labels: list[int], groups: list[list[int]]) -> tuple[float, float, float]:
    group_of = {row: g for g, rows in enumerate(groups) for row in rows}
    same_true = same_pred = both = 0
    for a, b in itertools.combinations(range(len(labels)), 2):
        t = labels[a] == labels[b] and labels[a] >= 0
        p = group_of[a] == group_of[b]
        same_true += t
        same_pred += p
        both += t and p
    precision = both / same_pred if same_pred else 1.0
    recall = both / same_true if same_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    from ingest.embedder import Embedder

    embedder = Embedder()
    texts: list[str] = []
    labels: list[int] = []
    for label, group in enumerate(PARAPHRASES):
        texts += group
        labels += [label] * len(group)
    singles = eval_questions()
    texts += singles
    labels += [-1 - n for n in range(len(singles))]  # each its own group
    vectors = np.array([embedder.embed_query(t) for t in texts], dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = vectors @ vectors.T
    same = [cos[a, b] for a, b in itertools.combinations(range(len(texts)), 2) if labels[a] == labels[b]]
    different = [cos[a, b] for a, b in itertools.combinations(range(len(texts)), 2) if labels[a] != labels[b]]
    print(f"{len(texts)} questions: {len(PARAPHRASES)} paraphrase groups, {len(singles)} single questions")
    print(
        f"paraphrase pairs: n={len(same)} min {min(same):.3f} p10 {np.percentile(same, 10):.3f} "
        f"median {np.median(same):.3f}"
    )
    print(
        f"different pairs:  n={len(different)} max {max(different):.3f} p99 {np.percentile(different, 99):.3f} "
        f"median {np.median(different):.3f}"
    )
    print("threshold  precision  recall  F1     groups")
    rows = []
    # Several orders: greedy grouping depends on the order questions arrive in.
    rng = np.random.default_rng(0)
    orders = [np.arange(len(texts))] + [rng.permutation(len(texts)) for _ in range(4)]
    for threshold in np.arange(0.50, 0.91, 0.05):
        scores = []
        for order in orders:
            groups = group_by_meaning(vectors[order], float(threshold))
            groups = [[int(order[i]) for i in g] for g in groups]
            scores.append((*pair_scores(labels, groups), len(groups)))
        p, r, f, n = (float(np.mean([s[i] for s in scores])) for i in range(4))
        rows.append(
            {"threshold": round(float(threshold), 2), "precision": p, "recall": r, "f1": f, "groups": n}
        )
        print(f"{threshold:9.2f}  {p:9.3f}  {r:6.3f}  {f:.3f}  {n:6.1f}")
    best = max(rows, key=lambda row: row["f1"])
    print(f"best F1 at {best['threshold']}")
    emit(
        "gaps_threshold",
        {
            "rows": rows,
            "best": best,
            "paraphrase_min": float(min(same)),
            "different_max": float(max(different)),
        },
    )


if __name__ == "__main__":
    main()
