"""Serving stacks as reviewed data (stacks.yml), the endpoint kinds that start them, and their launch arguments."""
