"""milvus-migrate: move a Milvus standalone message queue between RocksMQ and NATS."""

__version__ = "0.1.0"
