"""Documents: ingestion (extract, chunk, embed, index) and retrieval for turns."""
