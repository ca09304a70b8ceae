"""ecs-emulator: a local Amazon ECS (EC2 launch type) that runs real Docker."""

__version__ = "0.1.0"
