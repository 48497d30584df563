"""Errors the core raises. Each carries a message meant for the person at the keyboard."""

from __future__ import annotations


class DossierError(Exception):
    """Base class: `str(err)` is safe and useful to show to a user."""

    exit_code = 1


class ConfigError(DossierError):
    """A setting is missing or wrong."""

    exit_code = 2


class ModelNotFoundError(ConfigError):
    """The embedding model is not on local disk (downloads are never attempted)."""


class ModelMismatchError(DossierError):
    """The index was built with another embedding model."""

    exit_code = 2


class NoIndexError(DossierError):
    """Nothing has been ingested yet."""

    exit_code = 2

    def __init__(self, message: str = "No documents indexed yet: run `dossier ingest PATH`") -> None:
        super().__init__(message)


class LockedError(DossierError):
    """Another process is writing to the index."""

    exit_code = 3


class QuestionError(DossierError):
    """The question is empty or too long."""

    exit_code = 2


class StoreError(DossierError):
    """The vector store could not be reached or used."""

    exit_code = 2


class CorruptIndexError(StoreError):
    """The manifest (index.sqlite) is damaged; `ingest --full` rebuilds it from the documents."""
