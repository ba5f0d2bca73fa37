"""Distributor drivers: how a VIP's traffic is spread over an amphora cluster."""
