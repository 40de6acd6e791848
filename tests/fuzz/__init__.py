"""Property and fuzz tests: every parser that reads outside input."""
