"""How Milvus is stopped, started and checked, per deployment shape."""
