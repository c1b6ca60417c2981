"""Providers: the outside systems a run drives (load balancers, DNS), one module each."""
