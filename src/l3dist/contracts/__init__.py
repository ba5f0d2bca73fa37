"""Wire contracts shared by the controller side and the amphora agent: the agent's
configuration, its API's request bodies and constants, and the heartbeat message.

Both sides import from here and from nothing of each other, so the agent can be installed and
run on a host without the controller's code paths, and a change of the wire format is one
change in one place. This package imports nothing of l3dist but ``l3dist.common``.
"""
