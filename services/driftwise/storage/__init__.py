"""Storage adapters: the durable event log (SQLite) and the vector store (Milvus)."""
