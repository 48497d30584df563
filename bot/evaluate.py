"""`dossier eval`: retrieval, answer, citation and abstention scores on a question file.

The scoring rules are DESIGN.md's: an answer is correct when every group of acceptable
strings has one in it (case, whitespace and curly quotes folded); a passage holds the
evidence when the two share one contiguous run of at least half the evidence's length.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Sequence
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.retrieval import passages_by_source
from bot.types import Answer, Citation, Passage
from dossier_common.errors import DossierError
from ingest.loaders import (
    LINE_SUFFIXES,
    LoadError,
    decode_text,
    editor_lines,
    fold_for_match,
    load_file,
    normalize_text,
    pdf_page_text,
)


class EvalQuestion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    question: str
    answers: list[list[str]] = Field(default_factory=list)
    evidence: str = ""
    relevant_sources: list[str] = Field(default_factory=list)
    answerable: bool = True
    kind: str = "factoid"


def load_questions(path: Path) -> list[EvalQuestion]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DossierError(f"Cannot read {path}: {err.strerror or err}") from err
    out = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(EvalQuestion.model_validate(json.loads(line)))
            except Exception as err:
                raise DossierError(f"{path}:{number}: not a valid question line ({err})") from err
    return out


def holds(passage: str, evidence: str) -> bool:
    """Whether the passage contains at least half of the evidence as one contiguous run."""
    a, b = fold_for_match(passage), fold_for_match(evidence)
    if not b:
        return False
    if b in a:
        return True
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size * 2 >= len(b)


def is_correct(answer: str, groups: Sequence[Sequence[str]]) -> bool:
    folded = fold_for_match(answer)
    return all(any(fold_for_match(option) in folded for option in group) for group in groups)


def is_relevant(passage: Passage, q: EvalQuestion) -> bool:
    """Whether the passage holds the question's evidence, or comes from one of its relevant sources."""
    if q.evidence and holds(passage.text, q.evidence):
        return True
    return bool(q.relevant_sources) and Path(passage.source).name in q.relevant_sources


def ndcg_at_10(ranked_sources: Sequence[str], relevant: Sequence[str]) -> float:
    wanted = set(relevant)
    dcg = sum(1 / math.log2(i + 2) for i, s in enumerate(ranked_sources[:10]) if Path(s).name in wanted)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(wanted))))
    return dcg / ideal if ideal else 0.0


def hit_rank(retrieved: Sequence[Passage], q: EvalQuestion) -> int | None:
    """The rank (from 1) of the first relevant passage, or None when none is."""
    return next((i + 1 for i, p in enumerate(retrieved) if is_relevant(p, q)), None)


_PAGE = re.compile(r"\bp\. (\d+)")
_LINES = re.compile(r"\blines? (\d+)(?:-(\d+))?")
_SECTION = re.compile(r"§ (.*?)(?:, lines? \d|$)")


class LocationCheck:
    """Whether a citation's quote lies inside the place its location names, in the original
    file read again from disk: the cited lines of a txt or Markdown file, the cited page of a
    PDF (its text extracted as ingest reads pages), the cited section of other formats.
    Compared with case, quote style and whitespace folded. Files are read once."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self._data: dict[Path, bytes | None] = {}
        self._pages: dict[tuple[Path, int], str | None] = {}

    def _read(self, path: Path) -> bytes | None:
        if path not in self._data:
            try:
                self._data[path] = path.read_bytes()
            except OSError:
                self._data[path] = None
        return self._data[path]

    def cited_text(self, citation: Citation) -> str | None:
        """The text of the original file at the citation's location; None when it names none
        or the file cannot be read."""
        path = self.paths.get(citation.source)
        data = self._read(path) if path is not None else None
        if path is None or data is None:
            return None
        suffix = path.suffix.lower()
        if suffix in LINE_SUFFIXES:
            lines = _LINES.search(citation.location)
            if lines is None:
                return None
            first, last = int(lines.group(1)), int(lines.group(2) or lines.group(1))
            try:
                raw = decode_text(data)
            except LoadError:
                return None
            return "\n".join(editor_lines(raw)[first - 1 : last])
        if suffix == ".pdf":
            page = _PAGE.search(citation.location)
            if page is None:
                return None
            key = (path, int(page.group(1)))
            if key not in self._pages:
                self._pages[key] = pdf_page_text(data, key[1])
            return self._pages[key]
        section = _SECTION.search(citation.location)
        try:
            document = load_file(path, path.parent)
        except LoadError:
            return None
        heading = section.group(1) if section else ""
        return "\n\n".join(s.text for s in document.sections if s.heading == heading) or None

    def __call__(self, citation: Citation) -> bool:
        cited = self.cited_text(citation)
        return cited is not None and fold_for_match(citation.quote) in fold_for_match(normalize_text(cited))


def score_one(
    q: EvalQuestion, answer: Answer, ms: float, k: int, located: LocationCheck | None = None
) -> dict[str, Any]:
    retrieved = answer.retrieved[:k]
    correct = None
    if q.answers:
        correct = (not answer.abstained) and is_correct(answer.text, q.answers)
    citations_ok = None
    if q.answerable and (q.evidence or q.relevant_sources):
        by_id = {p.id: p for p in answer.retrieved}
        cited = [by_id[c.passage_id] for c in answer.citations if c.passage_id in by_id]
        citations_ok = any(is_relevant(p, q) for p in cited)
    return {
        "id": q.id,
        "kind": q.kind,
        "question": q.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "answerable": q.answerable,
        "hit_rank": hit_rank(retrieved, q),
        "correct": correct,
        "citations_ok": citations_ok,
        "retrieved": [{"source": p.source, "location": p.location} for p in retrieved],
        "ms": round(ms, 1),
        # [citations whose quote is at their location, citations]
        "citation_locations": [sum(1 for c in answer.citations if located(c)), len(answer.citations)]
        if located is not None
        else None,
    }


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile, p in [0, 100]: the smallest value with at least p% of the
    values at or below it (always one of the values; no interpolation). NaN when empty.

    The one definition for `dossier eval` and the benchmarks, so their figures compare."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered) / 100) - 1))]


def _rounded_percentile(values: Sequence[float], p: float) -> float | None:
    return round(percentile(values, p), 1) if values else None


def summarise(
    results: Sequence[dict[str, Any]], ndcgs: Sequence[tuple[float, str]], *, per_kind: bool = True
) -> dict[str, Any]:
    """The figures of DESIGN.md over `results`; `ndcgs` holds (nDCG@10, kind) per question with
    relevant sources. With per_kind, `by_kind` holds the same figures for each question kind."""
    answerable = [r for r in results if r["answerable"]]
    unanswerable = [r for r in results if not r["answerable"]]
    graded_hits = [r for r in answerable if r["_graded_retrieval"]]
    graded = [r for r in results if r["correct"] is not None]
    cited = [r for r in results if r["citations_ok"] is not None]
    lengths = [len(r["answer"]) for r in results if not r["abstained"]]
    times = [r["ms"] for r in results]
    summary: dict[str, Any] = {
        "n": len(results),
        "hit_at_k": _mean([1.0 if r["hit_rank"] else 0.0 for r in graded_hits]),
        "mrr": _mean([1.0 / r["hit_rank"] if r["hit_rank"] else 0.0 for r in graded_hits]),
        "answer_accuracy": _mean([1.0 if r["correct"] else 0.0 for r in graded]),
        "citation_accuracy": _mean([1.0 if r["citations_ok"] else 0.0 for r in cited]),
        "abstention_accuracy": _mean([1.0 if r["abstained"] else 0.0 for r in unanswerable]),
        "false_abstention_rate": _mean([1.0 if r["abstained"] else 0.0 for r in answerable]),
        "median_answer_chars": statistics.median(lengths) if lengths else None,
        "p50_ms": _rounded_percentile(times, 50),
        "p95_ms": _rounded_percentile(times, 95),
    }
    located = [r["citation_locations"] for r in results if r.get("citation_locations")]
    if located:
        total = sum(n for _, n in located)
        summary["citation_location_accuracy"] = (
            round(sum(ok for ok, _ in located) / total, 4) if total else None
        )
    if ndcgs:
        summary["ndcg_at_10"] = _mean([n for n, _ in ndcgs])
    if per_kind:
        kinds = sorted({r["kind"] for r in results})
        summary["by_kind"] = {
            kind: summarise(
                [r for r in results if r["kind"] == kind], [n for n in ndcgs if n[1] == kind], per_kind=False
            )
            for kind in kinds
        }
    return summary


def run_eval(engine: Any, questions: Sequence[EvalQuestion], *, k: int = 5) -> dict[str, Any]:
    if not questions:
        raise DossierError("The question file holds no questions.")
    results: list[dict[str, Any]] = []
    ndcgs: list[tuple[float, str]] = []
    paths = getattr(engine, "source_paths", None)
    located = LocationCheck(paths()) if paths is not None else None
    for q in questions:
        started = time.perf_counter()
        answer = engine.ask(q.question, k=k)
        ms = (time.perf_counter() - started) * 1000
        result = score_one(q, answer, ms, k, located)
        result["_graded_retrieval"] = bool(q.evidence or q.relevant_sources)
        results.append(result)
        if q.relevant_sources:
            # Ranking by document needs ten distinct sources: look deeper than the answer did.
            deeper = answer.retrieved if k >= 30 else engine.retrieve(answer.standalone_question, 30)
            ndcgs.append((ndcg_at_10(passages_by_source(deeper), q.relevant_sources), q.kind))
    summary = summarise(results, ndcgs)
    for r in results:
        del r["_graded_retrieval"]
    return {"summary": summary, "results": results}


def format_summary(summary: dict[str, Any]) -> str:
    rows = []
    for key, value in summary.items():
        if key == "by_kind":
            continue
        rows.append(f"{key:<24}{_shown(value):>10}")
    by_kind = summary.get("by_kind") or {}
    if by_kind:
        columns = (
            "n",
            "hit_at_k",
            "answer_accuracy",
            "citation_accuracy",
            "abstention_accuracy",
            "false_abstention_rate",
        )
        rows.append("")
        rows.append(f"{'by kind':<10}" + "".join(f"{c.split('_')[0]:>11}" for c in columns))
        for kind, figures in by_kind.items():
            rows.append(f"{kind:<10}" + "".join(f"{_shown(figures.get(c)):>11}" for c in columns))
    return "\n".join(rows)


def _shown(value: Any) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
