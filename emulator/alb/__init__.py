"""The ALB: listeners that proxy to target groups, with AWS's health checks, draining and routing.

balancer (pure: states and choice) <- targets (a group at run time) <- health
(the check loop) and proxy (the listeners; http1 parses, upstream pools).
"""
