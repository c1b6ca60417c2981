"""Targets behind small interfaces: load balancers (lb/) and DNS (dns/)."""
