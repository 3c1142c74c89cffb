"""The ``govsync`` command: one CLI for operators, SREs and schema reviewers."""
