"""Real container infrastructure for tests: podman setup, locally built images, deployment shapes."""
