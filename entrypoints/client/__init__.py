"""The command-line client of a running service: it speaks HTTP to it and nothing else."""
