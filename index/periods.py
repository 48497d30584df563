"""Which period a document covers, and which period a question asks about.

Collections of reports hold one company's filings for several quarters or years. A document's
period is read when it is recorded (index/manifest.py): the labels its file name or title
states ("2023 Q3 AAPL.pdf", "Annual report FY2022") and the period end its first pages state
("For the quarterly period ended July 1, 2023", "for the fiscal year ended December 31, 2022").
A question's period is read from its words ("Q3 2023", "in FY2022", "as of December 31,
2021", "in the most recent 10-Q"), and `matching_sources` says which documents it prefers.

Fiscal years that are not calendar years make "Q3 2023" ambiguous: Apple's 10-Q for the
quarter ended July 1, 2023 is its fiscal Q3 2023, while the calendar quarter that ends then
is Q2. So a document is judged by the labels it states when it states any; only a document
without a quarter label is placed by its period end, in the calendar quarter that holds it
(a 52/53-week quarter ending a few days into the next month counts as the month before). A
question's "Q3 2023" and "Q3 FY2023" are treated alike: the question's wording rarely says
which calendar it means.

Not handled: labels inside the text (a cover saying "third quarter of fiscal 2023" gives only
its period end); relative periods other than "the latest" ("last year", "the prior quarter");
a fiscal year asked about is not matched to an unlabelled quarterly filing by its end date (the
company's fiscal calendar is unknown); dates written 04.01.2023 (day or month first?).

Pure functions over strings and dates; no model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import PurePath

# How far into a document's text its cover page reaches (a 10-Q cover is ~2,000 characters).
OPENING_CHARS = 6000
# 52/53-week fiscal calendars end quarters on a weekday near the month's end, a few days
# either side of it (Apple's "July 1, 2023", Intel's "October 1, 2022").
_WEEK_CALENDAR_SLACK = timedelta(days=7)
_SAME_DAY_SLACK = 3  # days between a date asked about and a period end that still match

_MONTHS = {
    name: n
    for n, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE_PATTERNS = [
    re.compile(_MONTH + r"\s+(?P<day>\d{1,2}),?\s+(?P<year>(?:19|20)\d\d)\b", re.I),  # July 1, 2023
    re.compile(r"\b(?P<day>\d{1,2})\s+" + _MONTH + r",?\s+(?P<year>(?:19|20)\d\d)\b", re.I),  # 1 July 2023
    re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<mon>\d\d)-(?P<day>\d\d)\b"),  # 2023-07-01
]
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
# Four digits, or two after an apostrophe ("Q3'23"): a bare "10" is more often "10-Q" than 2010.
_YEAR = r"(?P<year>(?:19|20)\d\d|'\d\d)"
_QUARTER_PATTERNS = [
    # Q3 2023, Q3 FY2023, Q3-23, Q3'23, Q3 fiscal 2023
    re.compile(r"\bQ(?P<q>[1-4])[\s_\-/]*(?P<fy>FY|fiscal(?:\s+year)?)?[\s_\-]*" + _YEAR + r"\b", re.I),
    # Q3 FY24: after "FY" two digits are a year
    re.compile(r"\bQ(?P<q>[1-4])[\s_\-/]*(?P<fy>FY)[\s_\-]*(?P<year>(?:19|20)?\d\d)\b", re.I),
    # 2023 Q3, FY2023 Q3, 2023-Q3
    re.compile(r"\b(?P<fy>FY)?[\s_\-]*" + _YEAR + r"[\s_\-/]*Q(?P<q>[1-4])\b", re.I),
    # 3Q23, 3Q 2023
    re.compile(r"\b(?P<q>[1-4])Q[\s_\-]*(?P<year>(?:19|20)\d\d|'?\d\d)\b", re.I),
    # third quarter of fiscal 2023, the second quarter 2023, fourth quarter of 2022
    re.compile(
        r"\b(?P<ord>first|second|third|fourth|1st|2nd|3rd|4th)[\s\-]+(?:fiscal\s+)?quarter\s+(?:of\s+)?"
        r"(?:the\s+)?(?P<fy>fiscal(?:\s+year)?|FY)?\s*" + _YEAR + r"\b",
        re.I,
    ),
]
# FY2022, FY 22, fiscal 2022, fiscal year 2022
_FISCAL_YEAR = re.compile(
    r"\b(?:FY[\s_\-]*(?P<short>\d\d)|(?:FY|fiscal\s+(?:year\s+)?)[\s_\-]*" + _YEAR + r")\b", re.I
)
# A document's cover: "for the quarterly period ended July 1, 2023", "fiscal year ended ...".
_PERIOD_END = re.compile(
    r"\b(?:(?P<quarter>quarterly\s+period|quarter|three\s+months|thirteen\s+weeks)|"
    r"(?P<year>fiscal\s+year|year|twelve\s+months|annual\s+period)|period)\s+ended\s+",
    re.I,
)
# A question's date: "as of December 31, 2021", "the quarter ended July 1, 2023", "on ...".
_ASKED_DATE = re.compile(r"\b(?:as\s+of|as\s+at|ended|ending|ends|on|at)\s+$", re.I)
_LATEST = re.compile(r"\b(?:latest|most\s+recent|newest|most\s+current)\b", re.I)
# A bare year names a period only after a preposition: "in 2021", "during 2022", "for 2021".
_BARE_YEAR = re.compile(
    r"\b(?:in|during|for|of|throughout)\s+(?:calendar\s+(?:year\s+)?)?((?:19|20)\d\d)\b", re.I
)


@dataclass(frozen=True)
class DocumentPeriod:
    """The period a document covers, as far as it says."""

    end: date | None = None  # the period end its cover states
    kind: str = ""  # "quarter" or "year" (what ended on `end`), "" when it does not say
    quarters: frozenset[tuple[int, int]] = frozenset()  # stated (year, quarter) labels
    years: frozenset[int] = frozenset()  # stated fiscal or calendar year labels

    def __bool__(self) -> bool:
        return self.end is not None or bool(self.quarters) or bool(self.years)

    def order(self) -> tuple[int, int, int]:
        """A key that sorts documents of one series oldest first: the period end when stated,
        else the latest label."""
        if self.end is not None:
            return (self.end.year, self.end.month, self.end.day)
        if self.quarters:
            year, quarter = max(self.quarters)
            return (year, 3 * quarter, 28)
        return (max(self.years), 12, 31) if self.years else (0, 0, 0)

    def describe(self) -> str:
        """A short human-readable form ("Q3 2023, period ended 2023-07-01")."""
        parts = [f"Q{q} {y}" for y, q in sorted(self.quarters)]
        parts += [f"FY{y}" for y in sorted(self.years) if not any(y == qy for qy, _ in self.quarters)]
        if self.end is not None:
            parts.append(f"{self.kind or 'period'} ended {self.end.isoformat()}")
        return ", ".join(parts)

    def to_json(self) -> str:
        return json.dumps(
            {
                "end": self.end.isoformat() if self.end else None,
                "kind": self.kind,
                "quarters": sorted(self.quarters),
                "years": sorted(self.years),
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> DocumentPeriod:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            end=date.fromisoformat(data["end"]) if data.get("end") else None,
            kind=data.get("kind", ""),
            quarters=frozenset((int(y), int(q)) for y, q in data.get("quarters", ())),
            years=frozenset(int(y) for y in data.get("years", ())),
        )


@dataclass(frozen=True)
class AskedPeriod:
    """The periods a question names (any of them may be matched)."""

    quarters: frozenset[tuple[int, int]] = frozenset()
    years: frozenset[int] = frozenset()  # "FY2022", "fiscal 2022"
    calendar_years: frozenset[int] = frozenset()  # "in 2021": a document labelled or ending in 2021
    dates: frozenset[date] = frozenset()  # "as of December 31, 2021"
    latest: bool = False  # "the most recent 10-Q"

    def __bool__(self) -> bool:
        return bool(self.quarters or self.years or self.calendar_years or self.dates or self.latest)


def _year(text: str) -> int:
    digits = text.lstrip("'")
    year = int(digits)
    return year if len(digits) == 4 else 2000 + year


def find_dates(text: str) -> list[tuple[int, int, date]]:
    """(start, end, date) of every date written out in the text, in order."""
    found: list[tuple[int, int, date]] = []
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            groups = m.groupdict()
            month = int(groups["mon"]) if groups.get("mon") else _MONTHS[groups["month"].lower()]
            try:
                found.append((m.start(), m.end(), date(int(groups["year"]), month, int(groups["day"]))))
            except ValueError:
                continue  # "February 30": not a date
    return sorted(found)


def _quarter_labels(text: str) -> tuple[set[tuple[int, int]], set[int], list[tuple[int, int]]]:
    """(year, quarter) labels, fiscal years implied by fiscal quarter labels, and their spans."""
    quarters: set[tuple[int, int]] = set()
    fiscal: set[int] = set()
    spans: list[tuple[int, int]] = []
    for pattern in _QUARTER_PATTERNS:
        for m in pattern.finditer(text):
            groups = m.groupdict()
            quarter = int(groups["q"]) if groups.get("q") else _ORDINALS[groups["ord"].lower()]
            year = _year(groups["year"])
            quarters.add((year, quarter))
            if groups.get("fy"):
                fiscal.add(year)
            spans.append((m.start(), m.end()))
    return quarters, fiscal, spans


def _outside(spans: Iterable[tuple[int, int]], start: int, end: int) -> bool:
    return all(end <= a or start >= b for a, b in spans)


def _stated_labels(name: str) -> tuple[set[tuple[int, int]], set[int]]:
    """Quarter and year labels a file name or title states."""
    text = re.sub(r"[_]+", " ", name)
    quarters, years, spans = _quarter_labels(text)
    for m in _FISCAL_YEAR.finditer(text):
        if _outside(spans, m.start(), m.end()):
            years.add(_year(m.group("year") or m.group("short")))
    if not quarters and not years:
        # "Annual Report 2022", "acme-10k-2021.pdf": a single year in a name is its period. A
        # name with several years (a range, a title about history) states none.
        named = set(re.findall(r"(?<!\d)((?:19|20)\d\d)(?!\d)", text))
        if len(named) == 1:
            years.add(int(named.pop()))
    return quarters, years


def _cover_end(opening: str) -> tuple[date | None, str]:
    """The period end the document's first pages state, and what ended then."""
    dates = find_dates(opening)
    for m in _PERIOD_END.finditer(opening):
        after = [d for start, _, d in dates if m.end() <= start <= m.end() + 3]
        if after:
            kind = "quarter" if m.group("quarter") else "year" if m.group("year") else ""
            return after[0], kind
    return None, ""


def document_period(names: Iterable[str], opening: str) -> DocumentPeriod:
    """A document's period from its names (file name, source name, title) and the start of its
    text (only the first OPENING_CHARS characters are read)."""
    quarters: set[tuple[int, int]] = set()
    years: set[int] = set()
    for name in names:
        if not name:
            continue
        stem = PurePath(name).stem if re.search(r"\.\w{2,5}$", name) else name
        q, y = _stated_labels(stem)
        quarters |= q
        years |= y
    end, kind = _cover_end(opening[:OPENING_CHARS])
    return DocumentPeriod(end=end, kind=kind, quarters=frozenset(quarters), years=frozenset(years))


def series_name(name: str) -> str:
    """A document's name without its period: documents that share it are one series (one
    company's quarterly filings), in which "the latest" means something."""
    stem = PurePath(name).stem if re.search(r"\.\w{2,5}$", name) else name
    text = re.sub(r"[_]+", " ", stem)
    _, _, spans = _quarter_labels(text)
    for a, b in sorted(spans, reverse=True):
        text = text[:a] + " " + text[b:]
    text = _FISCAL_YEAR.sub(" ", text)
    text = re.sub(r"(?<!\d)(?:19|20)\d\d(?!\d)", " ", text)
    text = re.sub(r"\b(?:" + "|".join(_MONTHS) + r")\b", " ", text, flags=re.I)
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def asked_period(question: str) -> AskedPeriod:
    """The periods a question names; empty (falsy) when it names none."""
    quarters, fiscal, spans = _quarter_labels(question)
    years = set(fiscal)
    for m in _FISCAL_YEAR.finditer(question):
        if _outside(spans, m.start(), m.end()):
            years.add(_year(m.group("year") or m.group("short")))
            spans.append((m.start(), m.end()))
    dates: set[date] = set()
    for start, end, when in find_dates(question):
        if _ASKED_DATE.search(question[max(0, start - 20) : start]):
            dates.add(when)
            spans.append((start, end))
    calendar: set[int] = set()
    for m in _BARE_YEAR.finditer(question):
        if _outside(spans, m.start(1), m.end(1)):
            calendar.add(int(m.group(1)))
            spans.append((m.start(1), m.end(1)))
    latest = _LATEST.search(question)
    return AskedPeriod(
        quarters=frozenset(quarters),
        years=frozenset(years),
        calendar_years=frozenset(calendar),
        dates=frozenset(dates),
        latest=latest is not None,
    )


def calendar_quarter(end: date) -> tuple[int, int]:
    """The calendar (year, quarter) a period ending on `end` belongs to."""
    shifted = end - _WEEK_CALENDAR_SLACK
    return shifted.year, (shifted.month - 1) // 3 + 1


def _year_of(end: date) -> int:
    return (end - _WEEK_CALENDAR_SLACK).year


def _quarter_matches(asked: frozenset[tuple[int, int]], period: DocumentPeriod) -> bool:
    if period.quarters:  # what the document calls itself
        return bool(asked & period.quarters)
    return period.end is not None and period.kind != "year" and calendar_quarter(period.end) in asked


def _fiscal_year_matches(asked: frozenset[int], period: DocumentPeriod) -> bool:
    if asked & period.years or any(year in asked for year, _ in period.quarters):
        return True
    # An annual report that states only its year end: fiscal years are named by the year they end in.
    unlabelled = not period.years and not period.quarters
    return unlabelled and period.end is not None and period.kind == "year" and _year_of(period.end) in asked


def _calendar_year_matches(asked: frozenset[int], period: DocumentPeriod) -> bool:
    stated = period.years | {year for year, _ in period.quarters}
    if stated:
        return bool(stated & asked)
    return period.end is not None and _year_of(period.end) in asked


def _date_matches(asked: frozenset[date], period: DocumentPeriod) -> bool:
    end = period.end
    return end is not None and any(abs((end - day).days) <= _SAME_DAY_SLACK for day in asked)


def matches(asked: AskedPeriod, period: DocumentPeriod) -> bool:
    """Whether a document's period is one the question names (its "latest" aside)."""
    if not period:
        return False
    return (
        (bool(asked.quarters) and _quarter_matches(asked.quarters, period))
        or (bool(asked.years) and _fiscal_year_matches(asked.years, period))
        or (bool(asked.calendar_years) and _calendar_year_matches(asked.calendar_years, period))
        or (bool(asked.dates) and _date_matches(asked.dates, period))
    )


def latest_of_series(periods: Mapping[str, DocumentPeriod]) -> set[str]:
    """The newest document of each series of two or more documents with a period."""
    series: dict[str, list[str]] = {}
    for source, period in periods.items():
        key = series_name(source)
        if period and key:
            series.setdefault(key, []).append(source)
    latest: set[str] = set()
    for members in series.values():
        if len(members) < 2:
            continue
        newest = max(periods[s].order() for s in members)
        latest |= {s for s in members if periods[s].order() == newest}
    return latest


def matching_sources(asked: AskedPeriod, periods: Mapping[str, DocumentPeriod]) -> set[str]:
    """The documents of the period(s) a question names. Empty when it names none, or when every
    document with a period would match (then the period tells them nothing apart)."""
    if not asked:
        return set()
    named = AskedPeriod(asked.quarters, asked.years, asked.calendar_years, asked.dates)
    chosen = {source for source, period in periods.items() if named and matches(named, period)}
    if asked.latest and not named:
        chosen |= latest_of_series(periods)
    dated = sum(1 for period in periods.values() if period)
    return chosen if len(chosen) < dated else set()
