"""The migration's steps: each a Step (id, description, do) over a RunContext."""
