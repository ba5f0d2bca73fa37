"""The network driver interface of the network-driver-interface spec, and its implementations."""
