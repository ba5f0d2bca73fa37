"""l3dist: the L3 active-active distributor for load balancers (anycast VIPs over BGP/ECMP)."""

__version__ = "0.1.0"
