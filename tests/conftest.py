import os

from hypothesis import settings

pytest_plugins = ["tests.fixtures.stack", "tests.fixtures.pipeline", "tests.fixtures.capture"]

# CI replays the same examples every run; locally hypothesis keeps exploring new ones
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
