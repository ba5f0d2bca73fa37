"""The amphora driver family: how the controller talks to an amphora's agent.

``rest`` (production) is the agent API over HTTPS with mutual TLS. ``noop`` answers every call
in process, as a healthy agent would, for the API tests (Octavia's amphora noop driver): the
controller worker then runs its real flows, and every status the API shows is one the worker
wrote, without any daemon. Either way the controller holds an :class:`AgentClient`; only its
transport differs, so the client's parsing and errors are the same code in both.

Loaded by name from the ``l3dist.amphora_drivers`` entry points: factory(tls_context) ->
AmphoraDriver, where tls_context makes the controller's client TLS context (the CA is the
controller's; this package does not know where it lives).
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable

from l3dist.amphora_client import AgentClient


class AmphoraDriver(ABC):
    @abstractmethod
    def client(self, name: str, address: str, port: int, timeout: float) -> AgentClient:
        """A client of the agent at address:port whose certificate is issued to name (the
        amphora's compute id)."""


class RestAmphoraDriver(AmphoraDriver):
    """The agent API over HTTPS, mutual TLS, the agent's name checked."""

    def __init__(self, tls_context: Callable[[], ssl.SSLContext]) -> None:
        self.tls_context = tls_context

    def client(self, name: str, address: str, port: int, timeout: float) -> AgentClient:
        return AgentClient(name, address, self.tls_context(), timeout=timeout, port=port)
