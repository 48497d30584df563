"""Documents in, chunks in the index out: load, chunk, embed, upsert, delete, watch."""
