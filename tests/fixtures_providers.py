"""Shared pytest fixtures: providers."""
