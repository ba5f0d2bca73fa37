"""The l3dist lab: a simulated datacenter (a router with FRR, networks, hosts, member servers
and clients in network namespaces on one machine) with the demo and the benchmarks on top.

It uses l3dist as an operator does and is never imported by it: what it adds to l3dist (its
drivers, the ``l3dist lab|bench|demo`` commands) it registers through entry points.
"""
