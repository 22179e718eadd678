"""Serving the course's models: an OpenAI-compatible server, its chat page, and a load test."""
