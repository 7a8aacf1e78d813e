"""The web layer's insides, behind ``shared_core.api``: middleware, errors, inputs, pages, uploads, lookups.

``idempotency`` holds the idempotent create (``create_once``).
"""
