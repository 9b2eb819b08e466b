"""Shared pytest fixtures: golden."""
