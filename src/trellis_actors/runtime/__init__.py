"""The task runtime: store, queue, worker, janitor and scheduler actors behind a facade."""
