"""Shared by the Python scenarios: fixture images and the runner's variables."""

import os

FIXTURES = os.environ.get("GANTRY_TEST_FIXTURES", "127.0.0.1:5000/gantry-fixtures")
BUSYBOX = f"{FIXTURES}/busybox:latest"
GOLANG = f"{FIXTURES}/golang:latest"
STATIC = f"{FIXTURES}/static:nonroot"
AUTH_REGISTRY = os.environ.get("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
AUTH_USER = os.environ.get("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry")
AUTH_PASSWORD = os.environ.get("GANTRY_TEST_AUTH_REGISTRY_PASSWORD", "gantry-test-password")

# Set by run.py: unique per SDK and run, the run number (two-run scenarios),
# a folder for exports, and the secret's value.
MARKER = os.environ["CONFORMANCE_MARKER"]
RUN = os.environ.get("CONFORMANCE_RUN", "1")
OUT = os.environ.get("CONFORMANCE_OUT", "")
