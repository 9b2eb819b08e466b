"""The REST API: its operations, their gate, and the problem documents they answer with."""
