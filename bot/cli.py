"""The `dossier` command: parse input, call the core, print the result.

Heavy modules (torch, chromadb) are imported inside the commands that need them, so
`dossier --help` and errors about settings come back at once.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, overload

import typer

from bot.printable import json_printable, one_line, printable
from dossier_common.errors import ConfigError, DossierError

log = logging.getLogger("dossier")

app = typer.Typer(
    name="dossier",
    help="Ask questions about your documents and get short answers that quote and cite their sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
feedback_app = typer.Typer(help="Feedback given with the 👍/👎 buttons in Discord.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
KOpt = Annotated[
    int | None, typer.Option("-k", "--top-k", help="Passages to retrieve (default DOSSIER_TOP_K).")
]
MAX_TOP_K = 50  # the bound DOSSIER_TOP_K has
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _echo(text: str, *, err: bool = False) -> None:
    """Print text that may hold file names, titles, questions or model output, made harmless."""
    typer.echo(printable(text), err=err)


def _echo_json(data: Any) -> None:
    typer.echo(json_printable(json.dumps(data, ensure_ascii=False)))


class _PrintableFormatter(logging.Formatter):
    """Log lines name files and URLs too; they reach the same terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


@overload
def _check_k(k: int) -> int: ...
@overload
def _check_k(k: None) -> None: ...
def _check_k(k: int | None) -> int | None:
    if k is not None and not 1 <= k <= MAX_TOP_K:
        raise ConfigError(f"-k must be between 1 and {MAX_TOP_K} (got {k}).")
    return k


def _settings() -> Any:
    from dossier_common.settings import Settings

    try:
        return Settings()
    except Exception as err:  # pydantic's message names the bad field
        raise DossierError(f"Invalid settings: {err}") from err


def _engine(settings: Any) -> Any:
    from bot.engine import Engine

    return Engine(settings)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log progress to stderr.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_PrintableFormatter(LOG_FORMAT))
    for noisy in ("httpx", "chromadb", "sentence_transformers", "discord", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(help="Files, folders (walked recursively) or http(s) URLs of web pages and PDFs."),
    ],
    full: Annotated[bool, typer.Option("--full", help="Rebuild the index from scratch.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add, update and remove documents in the index (only what changed is embedded)."""
    from dossier_common.urls import display_url, is_url
    from ingest.fetch import fetch_to_documents

    settings = _settings()
    targets: list[Path] = []
    fetched: list[Path] = []
    for arg in paths:
        if is_url(arg):
            # Saved under the documents folder's web/, then ingested with that folder.
            fetched.append(fetch_to_documents(arg, settings))
            _echo(f"fetched {display_url(arg)} -> {fetched[-1]}", err=True)
            arg = str(settings.documents_dir)
        if Path(arg) not in targets:
            targets.append(Path(arg))
    from bot.progress import ProgressBar

    report = _engine(settings).ingest(targets, full=full, progress=ProgressBar())
    _remove_unreadable_downloads(fetched, report)
    if as_json:
        _echo_json(report.to_dict())
    else:
        for failure in report.failed:
            _echo(f"failed: {one_line(failure.path)}: {one_line(failure.reason)}", err=True)
        for skipped in report.skipped:
            _echo(f"skipped: {one_line(str(skipped.path))}: {one_line(skipped.reason)}", err=True)
        for file in report.files:
            if file.skipped_pages:
                pages = ", ".join(str(n) for n in file.skipped_pages)
                advice = f" ({one_line(file.advice)})" if file.advice else ""
                _echo(f"note: {one_line(file.path)}: pages {pages} not read{advice}", err=True)
        _echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


def _remove_unreadable_downloads(fetched: list[Path], report: Any) -> None:
    """Delete fetched pages that could not be loaded: left in place, they fail every ingest."""
    failed = {Path(failure.path).resolve() for failure in report.failed}
    for path in fetched:
        if path.resolve() in failed:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".url").unlink(missing_ok=True)
            log.info("removed %s: it could not be loaded", path)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """What is indexed, where it lives, and which model and answerer are in use."""
    from bot.render import format_status

    info = _engine(_settings()).status()
    if as_json:
        _echo_json(info.to_dict())
    else:
        _echo(format_status(info))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    as_json: JsonOpt = False,
    k: KOpt = None,
) -> None:
    """Answer one question with cited sources (or say the documents don't cover it)."""
    from bot.gaps import GapStore, record_declined
    from bot.render import format_answer

    settings = _settings()
    answer = _engine(settings).ask(question, k=_check_k(k))
    if answer.abstained:  # a knowledge gap (`dossier gaps`)
        record_declined(GapStore.for_settings(settings), answer.question, "cli")
    if as_json:
        _echo_json(answer.to_dict())
    else:
        _echo(format_answer(answer))


@app.command()
def summary(
    document: Annotated[
        str | None,
        typer.Argument(
            metavar="DOC", help="A file name, a title, or words of either (default: every document)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A document's brief as cited bullets, or one cited line per document."""
    from bot.render import format_answer

    engine = _engine(_settings())
    source = engine.find_document(document) if document else None
    answer = engine.summary(source)
    typer.echo(
        json.dumps(
            {**answer.to_dict(), "document": source, "period": engine.period_of(source) if source else None},
            ensure_ascii=False,
        )
        if as_json
        else format_answer(answer)
    )


@app.command()
def chat() -> None:
    """Chat with the documents in the terminal (follow-ups, /sources, /open N, /summary, /help)."""
    from bot.chat import run_chat

    raise typer.Exit(run_chat(_settings()))


@app.command()
def gaps(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only questions from this date (2026-11-30) or days ago (7d)."),
    ] = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row per group.")] = False,
) -> None:
    """Questions the documents could not answer (declined or voted down), grouped by meaning,
    most asked first, each with the nearest passages: which document to write next."""
    from bot.gaps import gap_report, parse_since, write_gaps_csv
    from bot.render import format_gaps

    if as_json and as_csv:
        raise ConfigError("Choose one of --json and --csv.")
    settings = _settings()
    groups = gap_report(settings, _engine(settings), parse_since(since))
    if as_json:
        _echo_json({"since": since, "groups": [g.to_dict() for g in groups]})
    elif as_csv:
        write_gaps_csv(groups, sys.stdout)
    else:
        _echo(format_gaps(groups))


@app.command(name="eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="Questions as JSON lines (see DESIGN.md).")],
    as_json: JsonOpt = False,
    k: Annotated[int, typer.Option("-k", help="Passages retrieved per question (hit@k).")] = 5,
) -> None:
    """Score retrieval, answers, citations and abstention on a question file."""
    from bot.evaluate import format_summary, load_questions, run_eval

    report = run_eval(_engine(_settings()), load_questions(file), k=_check_k(k))
    if as_json:
        _echo_json(report)
    else:
        _echo(format_summary(report["summary"]))


@app.command()
def watch(paths: Annotated[list[Path], typer.Argument(help="Folders to watch.")]) -> None:
    """Keep the index in step with folders: new, changed, renamed and deleted files."""
    from bot.watch_command import run_watch

    raise typer.Exit(run_watch(paths, _settings()))


@app.command()
def discord(
    watch: Annotated[
        list[Path] | None, typer.Option("--watch", help="Also watch this folder (repeatable).")
    ] = None,
) -> None:
    """Run the Discord bot (needs DISCORD_TOKEN)."""
    from bot.discord_bot import run_discord

    settings = _settings()
    if watch:
        settings = settings.model_copy(update={"watch_paths": [*settings.watch_paths, *watch]})
    raise typer.Exit(run_discord(settings))


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="A new folder to write the backup to.")],
) -> None:
    """Write a consistent copy of the index (manifest, vectors, keyword cache, feedback) to PATH."""
    from ingest.backup import backup as write_backup

    info = write_backup(_settings(), path)
    typer.echo(f"backed up {info['documents']} documents, {info['chunks']} chunks to {path}")


@app.command()
def restore(
    path: Annotated[Path, typer.Argument(help="A folder written by `dossier backup`.")],
) -> None:
    """Bring a backup into DOSSIER_HOME (which must hold no index yet)."""
    from ingest.backup import restore as read_backup

    settings = _settings()
    info = read_backup(settings, path)
    typer.echo(f"restored {info['documents']} documents, {info['chunks']} chunks into {settings.home}")


@feedback_app.command("export")
def feedback_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    out: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")
    ] = None,
) -> None:
    """Export the recorded feedback with questions, answers and sources."""
    from bot.feedback import export_feedback

    settings = _settings()
    if out is None:
        count = export_feedback(settings, sys.stdout, fmt)
    else:
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = export_feedback(settings, handle, fmt)
    typer.echo(f"{count} feedback rows exported", err=True)


def main() -> None:
    # At exit the interpreter garbage-collects every object of the thousands of modules that
    # sentence-transformers and torch import: ~1.2 s after the answer is printed. Frozen
    # objects are skipped (bench/RESULTS.md, cold start); nothing here relies on finalizers.
    atexit.register(gc.freeze)
    try:
        app()
    except DossierError as err:
        _echo(f"dossier: {err}", err=True)
        log.debug("error", exc_info=True)
        sys.exit(err.exit_code)
    except OSError as err:
        # The environment, not a bug: a home that is a file, a missing folder, a full disk.
        _echo(f"dossier: {_describe_os_error(err)}", err=True)
        log.debug("error", exc_info=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as err:
        # A bug, not a user error: one line for the user, the traceback in the log.
        log.error("unexpected error", exc_info=True)
        _echo(
            f"dossier: unexpected error ({type(err).__name__}: {err}); details are in the log above", err=True
        )
        sys.exit(1)


def _describe_os_error(err: OSError) -> str:
    reason = err.strerror or type(err).__name__
    where = err.filename if err.filename is not None else ""
    if err.filename2 is not None:
        where = f"{where} -> {err.filename2}"
    return f"{reason}: {where}" if where else reason


if __name__ == "__main__":
    main()
