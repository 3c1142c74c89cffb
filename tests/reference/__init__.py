"""The connector's hot paths as they were before they were made fast, kept as the reference
the tests compare the fast paths with, event for event and byte for byte."""
