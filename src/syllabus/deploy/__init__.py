"""Deployment: the inference server (OIP v2, /predict, prediction log), deployment specs,
revisions, targets (local, docker, kubernetes, batch), canary, shadow and rollback."""
