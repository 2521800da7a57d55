"""Parallel MP3 encoding: one conversion's audio on several cores at once (issue 17)."""
