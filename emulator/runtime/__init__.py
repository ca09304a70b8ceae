"""Runtimes: the only code that makes instances and task containers exist.

`DockerRuntime` runs instances as Docker-in-Docker containers and tasks as
real containers inside them; `FakeRuntime` keeps the same contract in
memory for unit tests and simulations. The control loops see only the
`Runtime` protocol in `base.py`.
"""
