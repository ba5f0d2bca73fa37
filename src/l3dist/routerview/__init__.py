"""The router's view: BMP (RFC 7854) feeds from the operator's routers, collected by pmacct's
``pmbmpd``, kept per router, BGP peer and prefix (pre- and post-policy), and written to the
database, where the API compares them with what l3dist intends (``l3dist.db.router_view``)."""
