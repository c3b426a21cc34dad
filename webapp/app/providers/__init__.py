"""Speech and language engines behind one registry (see ``registry``)."""

from webapp.app.providers.base import ProviderError
from webapp.app.providers.registry import ProviderRegistry

__all__ = ["ProviderError", "ProviderRegistry"]
