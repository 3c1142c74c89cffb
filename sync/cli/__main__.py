from sync.cli.main import cli

cli(prog_name="govsync")
