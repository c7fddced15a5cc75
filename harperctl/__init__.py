"""harperctl: drive harper-agent nodes through the operations API."""

from __future__ import annotations

__version__ = "0.1.0"
