"""The seed pipeline as a module for Dagger's Python SDK."""

from .main import Pipeline as Pipeline
