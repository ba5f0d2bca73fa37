"""Amphora health: signed UDP heartbeats from the agents, and the health manager that marks
amphorae stale and starts their failover."""
