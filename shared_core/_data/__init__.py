"""The data layer's insides, behind ``shared_core.models``: the soft delete and the change tracking."""
