"""Shared pytest fixtures: db."""
