"""Pipelines: cached steps composed into pipelines, executors (local, Ray), triggers and the
agent that runs them; the continuous-improvement loop."""
