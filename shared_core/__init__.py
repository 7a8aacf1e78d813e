"""shared_core: the common parts of the help-desk's Django services.

Import the pieces from their modules, so that importing the package itself
needs neither Django settings nor a network:

- ``shared_core.models``: ``BaseModel`` and its soft-delete managers;
- ``shared_core.clients``: ``HTTPClient`` and its errors;
- ``shared_core.middleware``: request id, deadline, trace and service-token middleware;
- ``shared_core.logging_config``: ``get_logging_config()``;
- ``shared_core.tracing``: W3C Trace Context (``traceparent``, ``tracestate``);
- ``shared_core.instrumentation``: HTTPClient's hooks for metrics and tracing;
- ``shared_core.outbox``: the transactional outbox and its worker (``manage.py outbox``).

``__version__`` is the one version of shared_core and of the base image.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
