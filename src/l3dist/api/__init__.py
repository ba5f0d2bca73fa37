"""The l3dist REST API: Octavia v2 style, plus distributors and BGP resources."""
