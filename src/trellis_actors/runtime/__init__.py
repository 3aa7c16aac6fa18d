"""The task runtime: store, queue, workers and janitor actors behind a facade."""
