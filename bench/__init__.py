"""ytmp3's benchmark suite: each figure measured side by side with its baseline in one run.

Run it with `./bench/run` (or `.venv/bin/python -m bench`); see bench/RESULTS.md.
"""
