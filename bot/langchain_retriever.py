"""The hybrid retriever as a LangChain retriever, for chains and agents."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


class DossierRetriever(BaseRetriever):
    """The hybrid retriever as a LangChain retriever (for chains and agents)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    hybrid: Any
    k: int = 5

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                page_content=p.text,
                metadata={"source": p.source, "location": p.location, "score": p.score, "id": p.id},
            )
            for p in self.hybrid.retrieve(query, self.k)
        ]
