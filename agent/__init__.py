"""harper-agent: a replicated database node in the style of HarperDB."""

__version__ = "0.1.0"
