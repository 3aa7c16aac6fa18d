"""Web applications (Flask, FastAPI) that submit tasks to a real ``trellis serve``."""
