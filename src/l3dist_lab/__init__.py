"""The l3dist lab: a simulated datacenter (a router with FRR, networks, hosts, member servers
and clients in network namespaces on one machine) with the demo and the benchmarks on top.

It uses l3dist as an operator does and is never imported by it: the controller runs on it with
the production drivers (``static`` network, ``hosts`` compute) and the lab's hosts run the
production agent; what the lab adds to l3dist (the ``l3dist lab|bench|demo`` commands) it
registers through an entry point.
"""
