"""The web console: schema reviewers browse the registry's subjects and compare versions with
the house review and the agencies a change reaches; the data protection officer answers one
person's question "who received what about me, when and why" from the disclosure audit.

Server-rendered HTML on aiohttp, like the registry. It reads the registry through its REST API
as a registry user of its own, and the audit through the audit's reader role; people log in
to the console itself (:mod:`sync.console.users`)."""
