"""The ALB: listeners that proxy to target groups, with AWS's health checks, draining and routing.

balancer (pure: target states, health transitions, the choice) <- targets
(one group at run time: registration, draining, subscribers, ELBv2 shapes)
<- health (the check loop) and proxy (listeners; exchange runs the HTTP of
one client connection, http1 parses bytes, upstream pools target
connections, stats counts as CloudWatch does). service wires them from the
model's TargetGroup/LoadBalancer; standalone runs one listener alone.
"""
