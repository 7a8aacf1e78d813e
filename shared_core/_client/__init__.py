"""The client layer's insides, behind ``shared_core.clients``: HTTPClient, its transport, errors and guards."""
