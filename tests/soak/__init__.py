"""A randomized, seeded soak: workload, fault injector and invariant checker (`make soak`)."""
