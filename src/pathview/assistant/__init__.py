"""The AI assistant: ask a local vision-language model about a region of a slide.

Backends (:func:`create_backend`: ``transformers`` for a local model folder, ``openai``
for a local OpenAI-compatible server) share one message format (:mod:`.messages`);
:mod:`.context` reads the region at a suitable magnification with its facts;
:class:`ChatSession` keeps the conversation, each answer tied to its region. torch and
transformers are imported only when a model loads.
"""

from __future__ import annotations

from .backend import Backend, LoadEvent, backend_names, create_backend, load_in_background, register_backend
from .context import Annotation, RegionContext, build_context
from .discovery import AssistantModel, find_models, resolve_model
from .errors import AssistantError, NoAssistantModelError, RemoteServerRefusedError
from .session import AI_NOTICE, ChatSession, Turn

__all__ = [
    "AI_NOTICE", "Annotation", "AssistantError", "AssistantModel", "Backend", "ChatSession", "LoadEvent",
    "NoAssistantModelError", "RegionContext", "RemoteServerRefusedError", "Turn", "backend_names",
    "build_context", "create_backend", "find_models", "load_in_background", "register_backend", "resolve_model",
]
