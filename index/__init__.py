"""Product catalog: embedder, FAISS index and metadata store (see DESIGN.md)."""
