"""The on-disk index between ingest/ (which writes it) and bot/ (which reads it): its layout and
writer lock, the manifest and its schema, the vector store, the keyword index, chunk records,
sentence spans and briefs. Imports neither bot/ nor ingest/."""
