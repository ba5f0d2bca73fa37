"""An Octavia provider driver for l3dist (issue 17).

Installed into Octavia's own Python environment, it turns Octavia's provider calls into
calls of l3dist's REST API. It imports nothing of ``l3dist`` (an import contract says so):
its only dependencies are octavia-lib and httpx (and oslo.config, which Octavia has).
"""
