"""tokenbench collector: sweeps LLM endpoints and lands every request as a raw row."""

__version__ = "0.1.0"
